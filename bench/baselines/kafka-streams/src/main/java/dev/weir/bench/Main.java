package dev.weir.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;

/**
 * The Kafka Streams baseline of weir's benchmarks. One process runs one mode:
 *   counting         per-key counter in RocksDB, one output per input
 *   command-service  dedupe + routing + handler + deadline arbiter (TTL by punctuator scan)
 *   delayed          delayed delivery from a time-ordered store, scanned by a punctuator
 *
 * Protocol with bench/baselines/kafka-streams.ts: one line `weir-streams: <STATE> <epoch ms>` on stdout per
 * state change (RUNNING means assigned, restored and processing); SIGTERM closes the application cleanly
 * (exit 0); an unexpected error prints `weir-streams: FAILED <message>` and exits 1.
 */
public final class Main {
  private Main() {}

  public static void main(String[] args) throws Exception {
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    Options o;
    try {
      o = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("weir-streams: " + e.getMessage());
      System.exit(2);
      return;
    }
    Topology topology = switch (o.mode) {
      case "counting" -> CountingTopology.build(o);
      case "command-service" -> CommandServiceTopology.build(o);
      default -> DelayedTopology.build(o);
    };
    List<String> topics = switch (o.mode) {
      case "counting" -> List.of(o.input, o.output);
      case "command-service" -> CommandServiceTopology.topics(o);
      default -> DelayedTopology.topics(o);
    };
    ensureTopics(o, topics);

    KafkaStreams streams = new KafkaStreams(topology, config(o));
    CountDownLatch closed = new CountDownLatch(1);
    int[] exitCode = {0};
    streams.setStateListener((next, previous) -> {
      System.out.println("weir-streams: " + next + " " + System.currentTimeMillis());
      System.out.flush();
    });
    streams.setUncaughtExceptionHandler(e -> {
      System.out.println("weir-streams: FAILED " + e);
      System.out.flush();
      exitCode[0] = 1;
      closed.countDown();
      return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    Thread hook = new Thread(() -> {
      // A requested stop is a clean exit (0), not the JVM's 143: the runner can tell it from a crash.
      boolean clean = streams.close(Duration.ofSeconds(30));
      closed.countDown();
      System.out.println("weir-streams: CLOSED " + System.currentTimeMillis());
      System.out.flush();
      Runtime.getRuntime().halt(clean ? 0 : 3);
    }, "weir-streams-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    streams.start();
    closed.await();
    if (exitCode[0] != 0) {
      streams.close(Duration.ofSeconds(10));
      Runtime.getRuntime().halt(exitCode[0]);
    }
  }

  private static Properties config(Options o) {
    Properties p = new Properties();
    p.put(StreamsConfig.APPLICATION_ID_CONFIG, o.applicationId);
    p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrapServers);
    p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, o.exactlyOnce ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
    p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, o.commitIntervalMs);
    p.put(StreamsConfig.STATE_DIR_CONFIG, o.stateDir);
    p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, o.threads);
    p.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
    // A bench run is one fresh member: no reason to wait for more to join.
    p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 10_000);
    return p;
  }

  /** Creates the topics the topology reads and writes that do not exist yet, with the input's partition count. */
  private static void ensureTopics(Options o, List<String> topics) throws InterruptedException, ExecutionException {
    Properties p = new Properties();
    p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, o.bootstrapServers);
    try (Admin admin = Admin.create(p)) {
      Set<String> existing = new HashSet<>(admin.listTopics().names().get());
      int partitions = existing.contains(o.input) ? admin.describeTopics(List.of(o.input)).allTopicNames().get().get(o.input).partitions().size() : 1;
      List<NewTopic> missing = new ArrayList<>();
      for (String topic : new HashSet<>(topics)) if (!existing.contains(topic)) missing.add(new NewTopic(topic, partitions, (short) 1));
      if (missing.isEmpty()) return;
      try {
        admin.createTopics(missing).all().get();
      } catch (ExecutionException e) {
        if (!(e.getCause() instanceof TopicExistsException)) throw e;
      }
    }
  }
}
