package dev.weir.bench;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** Command-line options: `--name value` pairs, validated at once so every mistake is reported together. */
final class Options {
  final String mode;
  final String bootstrapServers;
  final String applicationId;
  final String input;
  final String output;
  final boolean exactlyOnce;
  final long commitIntervalMs;
  final String stateDir;
  final int threads;
  final boolean caching;
  // command-service
  final String deadlines;
  final String late;
  final String deadLetters;
  final String events;
  final List<String> commands;
  final long dedupeRetentionMs;
  final long decisionRetentionMs;
  final long ttlScanMs;
  // delayed
  final long scanMs;
  final int maxPerScan;

  private Options(Map<String, String> a, List<String> problems) {
    mode = a.getOrDefault("mode", "");
    bootstrapServers = a.getOrDefault("bootstrap-servers", "");
    applicationId = a.getOrDefault("application-id", "");
    input = a.getOrDefault("input", "");
    output = a.getOrDefault("output", "");
    exactlyOnce = !"off".equals(a.getOrDefault("eos", "on"));
    commitIntervalMs = number(a, "commit-interval-ms", 100, problems);
    stateDir = a.getOrDefault("state-dir", System.getProperty("java.io.tmpdir") + "/weir-streams-baseline");
    threads = (int) number(a, "threads", 1, problems);
    caching = !"off".equals(a.getOrDefault("caching", "on"));
    deadlines = a.getOrDefault("deadlines", input + ".deadlines");
    late = a.getOrDefault("late", output + ".late");
    deadLetters = a.getOrDefault("dead-letters", input + ".dlq");
    events = a.getOrDefault("events", "");
    commands = List.of(a.getOrDefault("commands", "orders/orders/place").split(","));
    dedupeRetentionMs = number(a, "dedupe-retention-ms", 24L * 60 * 60_000, problems);
    decisionRetentionMs = number(a, "decision-retention-ms", 60L * 60_000, problems);
    ttlScanMs = number(a, "ttl-scan-ms", 10, problems);
    scanMs = number(a, "scan-ms", 5, problems);
    maxPerScan = (int) number(a, "max-per-scan", 10_000, problems);
    if (!List.of("counting", "command-service", "delayed").contains(mode)) problems.add("--mode must be counting, command-service or delayed");
    if (bootstrapServers.isEmpty()) problems.add("--bootstrap-servers is required");
    if (applicationId.isEmpty()) problems.add("--application-id is required");
    if (input.isEmpty()) problems.add("--input is required");
    if (output.isEmpty() && !"delayed".equals(mode)) problems.add("--output is required");
    if (threads < 1) problems.add("--threads must be >= 1");
    for (String path : commands) {
      if (path.split("/").length < 2) problems.add("--commands: " + path + " is not topicAlias/contextPath/alias");
    }
  }

  static Options parse(String[] args) {
    Map<String, String> a = new HashMap<>();
    List<String> problems = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (!arg.startsWith("--")) {
        problems.add("unexpected argument " + arg);
      } else if (i + 1 >= args.length) {
        problems.add(arg + " needs a value");
      } else {
        a.put(arg.substring(2), args[++i]);
      }
    }
    Options options = new Options(a, problems);
    if (!problems.isEmpty()) throw new IllegalArgumentException(String.join("; ", problems));
    return options;
  }

  private static long number(Map<String, String> a, String name, long fallback, List<String> problems) {
    String value = a.get(name);
    if (value == null) return fallback;
    try {
      return Long.parseLong(value);
    } catch (NumberFormatException e) {
      problems.add("--" + name + " must be an integer, got " + value);
      return fallback;
    }
  }
}
