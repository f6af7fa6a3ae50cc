package flinkgitops.testjobs;

import java.util.HashMap;
import java.util.Map;

/** "--name value" argument parsing without Flink's ParameterTool (its package moved in 2.0). */
final class Args {
    private Args() {}

    static Map<String, String> parse(String[] args) {
        Map<String, String> params = new HashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value pairs, got: " + args[i]);
            }
            params.put(args[i].substring(2), args[++i]);
        }
        return params;
    }

    static String required(Map<String, String> params, String name) {
        String value = params.get(name);
        if (value == null) {
            throw new IllegalArgumentException("missing --" + name);
        }
        return value;
    }
}
