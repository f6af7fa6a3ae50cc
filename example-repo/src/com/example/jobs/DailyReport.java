package com.example.jobs;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

/** Example batch job: a bounded aggregation that finishes. */
public final class DailyReport {
    private DailyReport() {}

    public static void main(String[] args) throws Exception {
        long rows = args.length > 0 ? Long.parseLong(args[0]) : 10_000;
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.fromSequence(1, rows).uid("rows")
                .keyBy(v -> v % 10)
                .reduce(Long::sum).uid("sum")
                .sinkTo(new DiscardingSink<>()).uid("sink");
        env.execute("daily-report");
    }
}
