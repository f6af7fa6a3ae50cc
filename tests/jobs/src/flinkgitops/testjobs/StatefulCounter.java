package flinkgitops.testjobs;

import java.io.IOException;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.connector.datagen.source.GeneratorFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * flink-gitops test job: an unbounded, stateful, rate-limited counter.
 *
 * <p>A DataGeneratorSource emits "key-0".."key-(N-1)" round robin; a keyed operator with the fixed
 * uid {@link #COUNTER_UID} counts records per key in ValueState. Every ~200 ms each subtask
 * atomically rewrites {@code <out>/counts-<subtask>.txt} with its keys' counts, the job id and the
 * write time, so tests can see that counts continue after a savepoint restore.
 *
 * <p>Arguments: --out DIR (required), --rate RECORDS_PER_S (default 200), --keys N (default 4),
 * --fail-on-start true (the counter throws when its task opens: the job starts, then FAILS).
 * The fixture builds a second jar from this source with a different COUNTER_UID.
 */
public final class StatefulCounter {
    static final String COUNTER_UID = "counter-v1";

    private StatefulCounter() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> params = Args.parse(args);
        String out = Args.required(params, "out");
        double rate = Double.parseDouble(params.getOrDefault("rate", "200"));
        int keys = Integer.parseInt(params.getOrDefault("keys", "4"));
        boolean failOnStart = Boolean.parseBoolean(params.getOrDefault("fail-on-start", "false"));

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        DataGeneratorSource<String> source =
                new DataGeneratorSource<>(
                        new KeyGenerator(keys),
                        Long.MAX_VALUE,
                        RateLimiterStrategy.perSecond(rate),
                        Types.STRING);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "generator")
                .uid("generator")
                .keyBy(new Identity())
                .process(new Counter(out, failOnStart))
                .uid(COUNTER_UID)
                .name("counter")
                .sinkTo(new DiscardingSink<>())
                .uid("discard");
        env.execute("flink-gitops stateful counter");
    }

    /** index -> "key-(index mod keys)". */
    public static final class KeyGenerator implements GeneratorFunction<Long, String> {
        private static final long serialVersionUID = 1L;
        private final int keys;

        KeyGenerator(int keys) {
            this.keys = keys;
        }

        @Override
        public String map(Long index) {
            return "key-" + (index % keys);
        }
    }

    /** The record is its own key. */
    public static final class Identity implements KeySelector<String, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(String value) {
            return value;
        }
    }

    /** Counts per key in ValueState and publishes this subtask's counts to a file. */
    public static final class Counter extends KeyedProcessFunction<String, String, String> {
        private static final long serialVersionUID = 1L;
        private static final long WRITE_EVERY_MS = 200;
        private final String out;
        private final boolean failOnStart;
        private transient ValueState<Long> count;
        private transient Map<String, Long> seen;
        private transient long lastWrite;
        private transient int subtask;
        private transient String jobId;

        Counter(String out, boolean failOnStart) {
            this.out = out;
            this.failOnStart = failOnStart;
        }

        @Override
        public void open(OpenContext context) throws Exception {
            if (failOnStart) {
                throw new IllegalStateException("flink-gitops test job: failing on start, as asked");
            }
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
            seen = new TreeMap<>();
            subtask = getRuntimeContext().getTaskInfo().getIndexOfThisSubtask();
            jobId = getRuntimeContext().getJobInfo().getJobId().toString();
        }

        @Override
        public void processElement(String key, Context ctx, Collector<String> collector) throws Exception {
            Long current = count.value();
            long next = (current == null ? 0L : current) + 1;
            count.update(next);
            seen.put(key, next);
            long now = System.currentTimeMillis();
            if (now - lastWrite >= WRITE_EVERY_MS) {
                publish(now);
                lastWrite = now;
            }
        }

        private void publish(long now) throws IOException {
            StringBuilder text = new StringBuilder();
            text.append("# job=").append(jobId).append(" written=").append(now).append('\n');
            for (Map.Entry<String, Long> e : seen.entrySet()) {
                text.append(e.getKey()).append('=').append(e.getValue()).append('\n');
            }
            AtomicFile.write(out, "counts-" + subtask + ".txt", text.toString());
        }
    }
}
