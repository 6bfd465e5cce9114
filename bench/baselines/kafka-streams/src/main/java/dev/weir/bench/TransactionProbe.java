package dev.weir.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java client's side of `npm run bench:transaction` (bench/transaction.ts): one transaction after another,
 * each writing one record to partition 0 of every --topics topic and committing one consumer offset of --input
 * for --group, then waiting until a read_committed consumer sees the record of the first topic. Prints one JSON
 * line: per step (send = produce acknowledged, offsets, commit, visible, total) the latencies in ms of the
 * transactions after the first --warmup ones (JIT, connections, metadata).
 */
public final class TransactionProbe {
  private TransactionProbe() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> a = new HashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
    List<String> problems = new ArrayList<>();
    for (String required : List.of("bootstrap-servers", "topics", "input", "group", "transactional-id")) {
      if (!a.containsKey(required)) problems.add("--" + required + " is required");
    }
    if (!problems.isEmpty()) {
      System.err.println("transaction-probe: " + String.join("; ", problems));
      System.exit(2);
    }
    List<String> topics = List.of(a.get("topics").split(","));
    int transactions = Integer.parseInt(a.getOrDefault("transactions", "300"));
    int valueBytes = Integer.parseInt(a.getOrDefault("value-bytes", "200"));
    int warmup = Integer.parseInt(a.getOrDefault("warmup", "50"));
    if (System.getProperty("org.slf4j.simpleLogger.defaultLogLevel") == null) System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");

    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap-servers"));
    p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, a.get("transactional-id"));
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    p.put(ProducerConfig.LINGER_MS_CONFIG, 0);
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap-servers"));
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 500);
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class);

    double[][] steps = new double[5][transactions];
    int total = warmup + transactions;
    try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p); KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(c)) {
      producer.initTransactions();
      TopicPartition watched = new TopicPartition(topics.get(0), 0);
      consumer.assign(List.of(watched));
      consumer.seekToEnd(List.of(watched));
      consumer.position(watched);
      ConsumerGroupMetadata group = new ConsumerGroupMetadata(a.get("group"));
      TopicPartition input = new TopicPartition(a.get("input"), 0);
      byte[] value = new byte[valueBytes];
      for (int n = 0; n < total; n++) {
        int i = n - warmup;
        long t0 = System.nanoTime();
        producer.beginTransaction();
        List<Future<RecordMetadata>> sent = new ArrayList<>();
        byte[] key = ("k" + n).getBytes();
        for (String topic : topics) sent.add(producer.send(new ProducerRecord<>(topic, 0, key, value)));
        for (Future<RecordMetadata> f : sent) f.get();
        long target = sent.get(0).get().offset();
        long t1 = System.nanoTime();
        producer.sendOffsetsToTransaction(Map.of(input, new OffsetAndMetadata(n)), group);
        long t2 = System.nanoTime();
        producer.commitTransaction();
        long t3 = System.nanoTime();
        boolean seen = false;
        while (!seen) {
          for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) if (r.offset() >= target) seen = true;
        }
        long t4 = System.nanoTime();
        if (i < 0) continue;
        steps[0][i] = (t1 - t0) / 1e6;
        steps[1][i] = (t2 - t1) / 1e6;
        steps[2][i] = (t3 - t2) / 1e6;
        steps[3][i] = (t4 - t3) / 1e6;
        steps[4][i] = (t4 - t0) / 1e6;
      }
    }
    String[] names = {"send", "offsets", "commit", "visible", "total"};
    StringBuilder json = new StringBuilder("{");
    for (int s = 0; s < names.length; s++) {
      double[] sorted = steps[s].clone();
      Arrays.sort(sorted);
      if (s > 0) json.append(',');
      json.append('"').append(names[s]).append("\":{\"p50\":").append(at(sorted, 0.5)).append(",\"p90\":").append(at(sorted, 0.9))
          .append(",\"p99\":").append(at(sorted, 0.99)).append('}');
    }
    System.out.println(json.append('}'));
  }

  private static double at(double[] sorted, double q) {
    return Math.round(sorted[Math.min(sorted.length - 1, (int) Math.floor(q * sorted.length))] * 100) / 100.0;
  }
}
