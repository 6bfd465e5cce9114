package dev.weir.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The floor of an exactly-once request/reply (`npm run bench:gateway`, bench/gateway/floor.ts): the smallest
 * consume-transform-produce loop Kafka's Java client allows. No state, no decoding: every command read from --input
 * (read_committed) is answered by one result on --output with the command's key and value, in one transaction per
 * poll that also commits the consumed offsets (sendOffsetsToTransaction with the group's metadata: the
 * exactly_once_v2 shape, one producer for every partition).
 *
 * Protocol with the bench: `weir-floor: RUNNING <epoch ms>` on stdout once partitions are assigned;
 * `weir-floor: FAILED <message>` and exit 1 on an error; SIGTERM closes the clients and exits 0.
 */
public final class RequestReplyFloor {
  private RequestReplyFloor() {}

  private static void applyOverrides(Properties target, String pairs) {
    if (pairs == null || pairs.isBlank()) return;
    for (String pair : pairs.split(",")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) throw new IllegalArgumentException("weir-floor: expected key=value, got " + pair);
      target.put(pair.substring(0, eq).trim(), pair.substring(eq + 1).trim());
    }
  }

  public static void main(String[] args) throws Exception {
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    Map<String, String> a = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    List<String> problems = new ArrayList<>();
    for (String required : List.of("bootstrap-servers", "input", "output", "group", "transactional-id")) {
      if (!a.containsKey(required)) problems.add("--" + required + " is required");
    }
    if (!problems.isEmpty()) {
      System.err.println("weir-floor: " + String.join("; ", problems));
      System.exit(2);
    }

    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap-servers"));
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, a.get("transactional-id"));
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap-servers"));
    c.put(ConsumerConfig.GROUP_ID_CONFIG, a.get("group"));
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);

    // Settings a user tuning this loop for latency would change (bench/baselines/README.md): key=value pairs,
    // comma-separated, applied over the defaults above.
    applyOverrides(p, a.get("producer-config"));
    applyOverrides(c, a.get("consumer-config"));

    KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p);
    KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c);
    String output = a.get("output");
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      consumer.wakeup();
      try {
        stopped.await();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, "weir-floor-shutdown"));
    int exitCode = 0;
    try {
      producer.initTransactions();
      boolean[] announced = {false};
      consumer.subscribe(List.of(a.get("input")), new ConsumerRebalanceListener() {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {}

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
          if (announced[0] || partitions.isEmpty()) return;
          announced[0] = true;
          System.out.println("weir-floor: RUNNING " + System.currentTimeMillis());
          System.out.flush();
        }
      });
      for (;;) {
        ConsumerRecords<byte[], byte[]> records = consumer.poll(Duration.ofMillis(100));
        if (records.isEmpty()) continue;
        producer.beginTransaction();
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<byte[], byte[]> r : records) {
          producer.send(new ProducerRecord<>(output, r.key(), r.value()));
          offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        producer.sendOffsetsToTransaction(offsets, consumer.groupMetadata());
        producer.commitTransaction();
      }
    } catch (WakeupException e) {
      // SIGTERM: a clean stop.
    } catch (Exception e) {
      System.out.println("weir-floor: FAILED " + e);
      System.out.flush();
      exitCode = 1;
    } finally {
      consumer.close(Duration.ofSeconds(5));
      producer.close(Duration.ofSeconds(5));
      stopped.countDown();
    }
    Runtime.getRuntime().halt(exitCode);
  }
}
