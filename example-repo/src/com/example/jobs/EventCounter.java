package com.example.jobs;

import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiterStrategy;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.apache.flink.util.Collector;

/** Example streaming job: counts generated events per key in keyed state (uids fixed for savepoints). */
public final class EventCounter {
    private EventCounter() {}

    public static void main(String[] args) throws Exception {
        String name = args.length > 0 ? args[0] : "event-counter";
        double rate = args.length > 1 ? Double.parseDouble(args[1]) : 20;
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        DataGeneratorSource<String> source = new DataGeneratorSource<>(
                i -> "key-" + (i % 8), Long.MAX_VALUE, RateLimiterStrategy.perSecond(rate), Types.STRING);
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "events").uid("events")
                .keyBy(s -> s)
                .process(new Count()).uid("count")
                .sinkTo(new DiscardingSink<>()).uid("sink");
        env.execute(name);
    }

    static final class Count extends KeyedProcessFunction<String, String, String> {
        private transient ValueState<Long> count;

        @Override
        public void open(OpenContext ctx) {
            count = getRuntimeContext().getState(new ValueStateDescriptor<>("count", Types.LONG));
        }

        @Override
        public void processElement(String key, Context ctx, Collector<String> out) throws Exception {
            long n = count.value() == null ? 1 : count.value() + 1;
            count.update(n);
            out.collect(key + "=" + n);
        }
    }
}
