package flinkgitops.testjobs;

import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.ReduceFunction;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.ProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/**
 * flink-gitops test job: a bounded batch count that finishes.
 *
 * <p>Generates --records (default 10000) records over --keys (default 4) keys in BATCH mode,
 * counts them per key and, with --out DIR, writes {@code <out>/batch-counts.txt} ("key=count").
 */
public final class BatchCount {
    private BatchCount() {}

    public static void main(String[] args) throws Exception {
        Map<String, String> params = Args.parse(args);
        long records = Long.parseLong(params.getOrDefault("records", "10000"));
        int keys = Integer.parseInt(params.getOrDefault("keys", "4"));
        String out = params.get("out");

        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        DataGeneratorSource<String> source =
                new DataGeneratorSource<>(new StatefulCounter.KeyGenerator(keys), records, Types.STRING);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "generator")
                .map(new One())
                .returns(Types.TUPLE(Types.STRING, Types.LONG))
                .keyBy(new First())
                .reduce(new Sum())
                .process(new Collect(out))
                .setParallelism(1)
                .sinkTo(new DiscardingSink<>());
        env.execute("flink-gitops batch count");
    }

    /** key -> (key, 1). */
    public static final class One implements MapFunction<String, Tuple2<String, Long>> {
        private static final long serialVersionUID = 1L;

        @Override
        public Tuple2<String, Long> map(String key) {
            return Tuple2.of(key, 1L);
        }
    }

    /** (key, n) -> key. */
    public static final class First implements KeySelector<Tuple2<String, Long>, String> {
        private static final long serialVersionUID = 1L;

        @Override
        public String getKey(Tuple2<String, Long> value) {
            return value.f0;
        }
    }

    /** Adds counts. */
    public static final class Sum implements ReduceFunction<Tuple2<String, Long>> {
        private static final long serialVersionUID = 1L;

        @Override
        public Tuple2<String, Long> reduce(Tuple2<String, Long> a, Tuple2<String, Long> b) {
            return Tuple2.of(a.f0, a.f1 + b.f1);
        }
    }

    /** Collects the final counts and writes them once, when the input ends. */
    public static final class Collect extends ProcessFunction<Tuple2<String, Long>, String> {
        private static final long serialVersionUID = 1L;
        private final String out;
        private final Map<String, Long> counts = new TreeMap<>();

        Collect(String out) {
            this.out = out;
        }

        @Override
        public void processElement(Tuple2<String, Long> value, Context ctx, Collector<String> collector) {
            counts.put(value.f0, value.f1);
        }

        @Override
        public void close() throws Exception {
            if (out == null || counts.isEmpty()) {
                return;
            }
            StringBuilder text = new StringBuilder();
            for (Map.Entry<String, Long> e : counts.entrySet()) {
                text.append(e.getKey()).append('=').append(e.getValue()).append('\n');
            }
            AtomicFile.write(out, "batch-counts.txt", text.toString());
        }
    }
}
