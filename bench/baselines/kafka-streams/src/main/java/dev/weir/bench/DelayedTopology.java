package dev.weir.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.TopicNameExtractor;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.value.Value;

/**
 * Delayed delivery the Kafka Streams way: schedule requests held in a time-ordered RocksDB store
 * (key = big-endian deliverAt + id), a wall-clock punctuator that forwards what is due and deletes it.
 *
 * Requests are weir's scheduler requests (processors/scheduler.ts `schedulerRequestSerde`), one msgpack map:
 *   {op: 'schedule', id: string, deliverAt: ms, topic: string, key?: bin|str|nil, value: bin|str|nil, headers?: {name: bin|str}}
 *   {op: 'cancel', id: string}
 * `op` may be left out (schedule) and `payload` may stand for `value`. Scheduling an id again replaces it.
 * A delivery carries the request's headers plus weir.scheduled.id and weir.scheduled.at (deliverAt, decimal ms).
 */
final class DelayedTopology {
  static final String TOPIC_HEADER = "weir.scheduled.topic";

  private DelayedTopology() {}

  static Topology build(Options o) {
    Topology t = new Topology();
    var bytes = Serdes.ByteArray();
    t.addSource("schedule", bytes.deserializer(), bytes.deserializer(), o.input);
    t.addProcessor("scheduler", () -> new Scheduler(o), "schedule");
    t.addStateStore(store("scheduled", o), "scheduler");
    t.addStateStore(store("scheduled-ids", o), "scheduler");
    TopicNameExtractor<byte[], byte[]> destination = (key, value, recordContext) ->
        new String(recordContext.headers().lastHeader(TOPIC_HEADER).value(), StandardCharsets.UTF_8);
    t.addSink("deliveries", destination, bytes.serializer(), bytes.serializer(), "scheduler");
    t.addSink("dead-letters", o.input + ".dlq", bytes.serializer(), bytes.serializer(), "scheduler");
    return t;
  }

  static List<String> topics(Options o) {
    List<String> topics = new ArrayList<>(List.of(o.input, o.input + ".dlq"));
    if (!o.output.isEmpty()) topics.add(o.output);
    return topics;
  }

  private static StoreBuilder<KeyValueStore<Bytes, byte[]>> store(String name, Options o) {
    StoreBuilder<KeyValueStore<Bytes, byte[]>> b = Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), Serdes.Bytes(), Serdes.ByteArray());
    return o.caching ? b.withCachingEnabled() : b;
  }

  /** A decoded schedule or cancel request. */
  record Request(String op, String id, long deliverAt, String topic, byte[] key, byte[] value, Map<String, byte[]> headers) {
    static Request decode(byte[] bytes) {
      Value v;
      try (MessageUnpacker unpacker = MessagePack.newDefaultUnpacker(bytes)) {
        v = unpacker.unpackValue();
      } catch (IOException | RuntimeException e) {
        throw new IllegalArgumentException("not a msgpack document: " + e.getMessage(), e);
      }
      if (!v.isMapValue()) throw new IllegalArgumentException("expected a msgpack map");
      Value op = Envelope.field(v, "op");
      String opName = op == null ? "schedule" : op.asStringValue().asString();
      Value id = Envelope.field(v, "id");
      if (id == null || !id.isStringValue() || id.asStringValue().asString().isEmpty()) throw new IllegalArgumentException("id must be a non-empty string");
      if (opName.equals("cancel")) return new Request("cancel", id.asStringValue().asString(), 0, null, null, null, Map.of());
      if (!opName.equals("schedule")) throw new IllegalArgumentException("op must be 'schedule' or 'cancel'");
      Value topic = Envelope.field(v, "topic");
      if (topic == null || !topic.isStringValue() || topic.asStringValue().asString().isEmpty()) throw new IllegalArgumentException("topic must be a non-empty string");
      Value value = Envelope.field(v, "value");
      if (value == null) value = Envelope.field(v, "payload");
      Map<String, byte[]> headers = new HashMap<>();
      Value h = Envelope.field(v, "headers");
      if (h != null && h.isMapValue()) {
        for (Map.Entry<Value, Value> e : h.asMapValue().map().entrySet()) headers.put(e.getKey().asStringValue().asString(), raw(e.getValue()));
      }
      return new Request("schedule", id.asStringValue().asString(), Envelope.time(Envelope.field(v, "deliverAt"), "deliverAt"), topic.asStringValue().asString(),
          raw(Envelope.field(v, "key")), raw(value), headers);
    }

    private static byte[] raw(Value v) {
      if (v == null || v.isNilValue()) return null;
      if (v.isBinaryValue()) return v.asBinaryValue().asByteArray();
      if (v.isStringValue()) return v.asStringValue().asByteArray();
      throw new IllegalArgumentException("key, value and headers must be bytes, strings or nil");
    }
  }

  static final class Scheduler implements Processor<byte[], byte[], byte[], byte[]> {
    private final Options o;
    private ProcessorContext<byte[], byte[]> context;
    private TimeIndex scheduled;
    private KeyValueStore<Bytes, byte[]> ids;

    Scheduler(Options o) {
      this.o = o;
    }

    @Override
    public void init(ProcessorContext<byte[], byte[]> context) {
      this.context = context;
      scheduled = new TimeIndex(context.getStateStore("scheduled"));
      ids = context.getStateStore("scheduled-ids");
      context.schedule(Duration.ofMillis(o.scanMs), PunctuationType.WALL_CLOCK_TIME, this::deliverDue);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
      Request request;
      try {
        request = Request.decode(record.value());
      } catch (IllegalArgumentException | ClassCastException | org.msgpack.core.MessageTypeException e) {
        DeadLetters.send(context, "dead-letters", record, "WEIR_ERR_DESERIALIZATION", "invalid scheduler request: " + e.getMessage());
        return;
      }
      // Cancel and replace only touch the id row: the time row stays and is skipped when it comes due, because
      // deleting rows ahead of "now" leaves tombstones that every scan steps over (TimeIndex).
      Bytes idKey = CommandServiceTopology.key(request.id());
      if (request.op().equals("cancel")) {
        ids.delete(idKey);
        return;
      }
      ids.put(idKey, ByteBuffer.allocate(8).putLong(request.deliverAt()).array());
      scheduled.put(request.deliverAt(), (byte) 0, request.id(), record.value());
    }

    private void deliverDue(long now) {
      List<KeyValue<Bytes, byte[]>> due = scheduled.due(now, o.maxPerScan);
      long firedAt = System.currentTimeMillis();
      for (KeyValue<Bytes, byte[]> entry : due) {
        scheduled.delete(entry.key);
        Request request = Request.decode(entry.value);
        Bytes idKey = CommandServiceTopology.key(request.id());
        byte[] current = ids.get(idKey);
        if (current == null || ByteBuffer.wrap(current).getLong() != request.deliverAt()) continue; // cancelled or replaced
        ids.delete(idKey);
        RecordHeaders headers = new RecordHeaders();
        for (Map.Entry<String, byte[]> h : request.headers().entrySet()) headers.add(h.getKey(), h.getValue());
        headers.add("weir.scheduled.id", DeadLetters.utf8(request.id()));
        headers.add("weir.scheduled.at", DeadLetters.utf8(String.valueOf(request.deliverAt())));
        headers.add(TOPIC_HEADER, DeadLetters.utf8(request.topic()));
        context.forward(new Record<>(request.key(), request.value(), firedAt, headers), "deliveries");
      }
    }
  }

}
