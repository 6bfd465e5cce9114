package dev.weir.bench;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;
import org.msgpack.value.Value;
import org.msgpack.value.ValueFactory;

/**
 * weir's command service (processors/command-service.ts) in Kafka Streams, with the same topics and the same
 * single hop (one sub-topology, one transaction from command to outcome), so both sides do the same work per command:
 *
 *   commands ──▶ router (dedupe + routing + handler) ──▶ arbiter ──▶ outcomes (one per request)
 *                       └─▶ dead letters, events          ▲    └─▶ late results
 *   deadlines (registrations, keyed like the command) ────┘
 *
 * Kafka Streams has no per-key timers: expiries (dedupe retention, deadlines, decision retention) are rows
 * of a time-ordered store, scanned by a wall-clock punctuator.
 */
final class CommandServiceTopology {
  static final byte TTL = 0;
  static final byte GC = 1;
  private static final byte[] EMPTY = new byte[0];

  private CommandServiceTopology() {}

  static Topology build(Options o) {
    Topology t = new Topology();
    var bytes = Serdes.ByteArray();
    t.addSource("commands", bytes.deserializer(), bytes.deserializer(), o.input);
    t.addProcessor("router", () -> new Router(o), "commands");
    t.addStateStore(store("seen-ids", o), "router");
    t.addStateStore(store("seen-expiry", o), "router");
    t.addStateStore(store("handler-state", o), "router");
    if (!o.events.isEmpty()) t.addSink("events", o.events, bytes.serializer(), bytes.serializer(), "router");

    t.addSource("deadlines", bytes.deserializer(), bytes.deserializer(), o.deadlines);
    t.addProcessor("arbiter", () -> new Arbiter(o), "deadlines", "router");
    t.addStateStore(store("decisions", o), "arbiter");
    t.addStateStore(store("arbiter-timers", o), "arbiter");
    t.addSink("outcomes", o.output, bytes.serializer(), bytes.serializer(), "arbiter");
    t.addSink("late", o.late, bytes.serializer(), bytes.serializer(), "arbiter");
    // One dead-letter sink per processor, so each dead letter says which processor sent it.
    t.addSink("router-dead-letters", o.deadLetters, bytes.serializer(), bytes.serializer(), "router");
    t.addSink("arbiter-dead-letters", o.deadLetters, bytes.serializer(), bytes.serializer(), "arbiter");
    return t;
  }

  static List<String> topics(Options o) {
    List<String> topics = new ArrayList<>(List.of(o.input, o.output, o.deadlines, o.late, o.deadLetters));
    if (!o.events.isEmpty()) topics.add(o.events);
    return topics;
  }

  private static StoreBuilder<KeyValueStore<Bytes, byte[]>> store(String name, Options o) {
    StoreBuilder<KeyValueStore<Bytes, byte[]>> b = Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(name), Serdes.Bytes(), Serdes.ByteArray());
    return o.caching ? b.withCachingEnabled() : b;
  }

  static Bytes key(String s) {
    return Bytes.wrap(s.getBytes(StandardCharsets.UTF_8));
  }

  /** Consumed-id dedupe, routing by command path, the handler; results go to the arbiter (same task) keyed by requestId. */
  static final class Router implements Processor<byte[], byte[], byte[], byte[]> {
    private static final String DEAD_LETTER_SINK = "router-dead-letters";
    private final Options o;
    private final Set<String> handled = new HashSet<>();
    private ProcessorContext<byte[], byte[]> context;
    private KeyValueStore<Bytes, byte[]> seen;
    private TimeIndex expiry;
    private KeyValueStore<Bytes, byte[]> state;

    Router(Options o) {
      this.o = o;
      handled.addAll(o.commands);
    }

    @Override
    public void init(ProcessorContext<byte[], byte[]> context) {
      this.context = context;
      seen = context.getStateStore("seen-ids");
      expiry = new TimeIndex(context.getStateStore("seen-expiry"));
      state = context.getStateStore("handler-state");
      context.schedule(Duration.ofSeconds(1), PunctuationType.WALL_CLOCK_TIME, this::expireSeenIds);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
      Envelope command;
      try {
        command = Envelope.decode(record.value());
      } catch (IllegalArgumentException e) {
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_ENVELOPE_DECODE", e.getMessage());
        return;
      }
      if (!command.kind.equals("command")) {
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_UNKNOWN_COMMAND", "expected a command, got a " + command.kind);
        return;
      }
      long now = System.currentTimeMillis();
      String id = command.dedupeId();
      Bytes idKey = key(id);
      if (seen.get(idKey) != null) return;
      seen.put(idKey, ByteBuffer.allocate(8).putLong(now).array());
      expiry.put(now + o.dedupeRetentionMs, TTL, id, EMPTY);

      String path = (command.topicAlias == null ? o.commands.get(0).split("/")[0] : command.topicAlias) + "/"
          + (command.contextPath.isEmpty() ? "" : command.contextPath + "/") + command.alias;
      byte[] requestKey = command.requestId.getBytes(StandardCharsets.UTF_8);
      if (!handled.contains(path)) {
        Value error = Envelope.map("code", ValueFactory.newString("WEIR_ERR_UNKNOWN_COMMAND"), "message", ValueFactory.newString("no handler for " + path),
            "path", ValueFactory.newString(path));
        context.forward(new Record<>(requestKey, command.result("error", error, now), record.timestamp()), "arbiter");
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_UNKNOWN_COMMAND", "no handler for " + path);
        return;
      }
      if (!command.payload.isMapValue()) {
        Value error = Envelope.map("code", ValueFactory.newString("WEIR_ERR_SCHEMA_VIOLATION"), "message", ValueFactory.newString("payload must be a map"));
        context.forward(new Record<>(requestKey, command.result("error", error, now), record.timestamp()), "arbiter");
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_SCHEMA_VIOLATION", "payload of " + path + " must be a map");
        return;
      }
      if (command.deadline >= 0 && now > command.deadline) {
        // The arbiter times the request out; the handler must not run (weir's router does the same).
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_COMMAND_EXPIRED", path + " expired " + (now - command.deadline) + " ms before it was handled");
        return;
      }
      context.forward(new Record<>(requestKey, command.result("ok", handle(command, record.key()), now), record.timestamp()), "arbiter");
      if (!o.events.isEmpty()) {
        context.forward(new Record<>(requestKey, command.event(command.alias + "d", command.payload, now), record.timestamp()), "events");
      }
    }

    /** The bench handler: one read and one write of per-entity state (keyed by payload.sku, else the record key), like weir's example handler. */
    private Value handle(Envelope command, byte[] recordKey) {
      Value sku = Envelope.field(command.payload, "sku");
      Bytes entity = sku != null && sku.isStringValue() ? key(sku.asStringValue().asString())
          : Bytes.wrap(recordKey == null ? command.requestId.getBytes(StandardCharsets.UTF_8) : recordKey);
      byte[] previous = state.get(entity);
      long count = previous == null ? 1 : ByteBuffer.wrap(previous).getLong() + 1;
      state.put(entity, ByteBuffer.allocate(8).putLong(count).array());
      Value qty = Envelope.field(command.payload, "qty");
      return Envelope.map("accepted", qty == null ? ValueFactory.newInteger(1) : qty, "count", ValueFactory.newInteger(count));
    }

    private void expireSeenIds(long now) {
      for (KeyValue<Bytes, byte[]> row : expiry.due(now, o.maxPerScan)) {
        seen.delete(key(TimeKeys.id(row.key)));
        expiry.delete(row.key);
      }
    }
  }

  /**
   * The one place that decides, per request, between its result and its timeout (weir's deadline arbiter).
   * Decision rows: 'o' + deadline + the registered command (open), or 'd' + outcome + decided-at (done).
   */
  static final class Arbiter implements Processor<byte[], byte[], byte[], byte[]> {
    private static final String DEAD_LETTER_SINK = "arbiter-dead-letters";
    private final Options o;
    private ProcessorContext<byte[], byte[]> context;
    private KeyValueStore<Bytes, byte[]> decisions;
    private TimeIndex timers;

    Arbiter(Options o) {
      this.o = o;
    }

    @Override
    public void init(ProcessorContext<byte[], byte[]> context) {
      this.context = context;
      decisions = context.getStateStore("decisions");
      timers = new TimeIndex(context.getStateStore("arbiter-timers"));
      context.schedule(Duration.ofMillis(o.ttlScanMs), PunctuationType.WALL_CLOCK_TIME, this::fireDue);
    }

    @Override
    public void process(Record<byte[], byte[]> record) {
      Envelope envelope;
      try {
        envelope = Envelope.decode(record.value());
      } catch (IllegalArgumentException e) {
        DeadLetters.send(context, DEAD_LETTER_SINK, record, "WEIR_ERR_ENVELOPE_DECODE", e.getMessage());
        return;
      }
      Bytes requestKey = key(envelope.requestId);
      byte[] current = decisions.get(requestKey);
      if (envelope.kind.equals("command")) {
        // A registration: the first counts; replays and registrations after the outcome are ignored.
        if (current != null || envelope.deadline < 0) return;
        byte[] command = record.value();
        decisions.put(requestKey, ByteBuffer.allocate(9 + command.length).put((byte) 'o').putLong(envelope.deadline).put(command).array());
        timers.put(envelope.deadline, TTL, envelope.requestId, EMPTY);
        return;
      }
      if (!envelope.kind.equals("result")) return;
      if (current != null && current[0] == 'd') {
        record.headers().add("weir.late", DeadLetters.utf8(outcomeName(current[1])));
        context.forward(record, "late");
        return;
      }
      // The deadline row stays: deleting rows ahead of "now" leaves tombstones every scan steps over (TimeIndex).
      // It fires at the deadline, finds the request decided, and goes.
      decide(requestKey, envelope.requestId, "error".equals(envelope.status) ? (byte) 'e' : (byte) 'k');
      context.forward(new Record<>(requestKey.get(), record.value(), record.timestamp(), record.headers()), "outcomes");
    }

    private void decide(Bytes requestKey, String requestId, byte outcome) {
      long now = System.currentTimeMillis();
      decisions.put(requestKey, ByteBuffer.allocate(10).put((byte) 'd').put(outcome).putLong(now).array());
      timers.put(now + o.decisionRetentionMs, GC, requestId, EMPTY);
    }

    private void fireDue(long now) {
      for (KeyValue<Bytes, byte[]> row : timers.due(now, o.maxPerScan)) {
        Bytes k = row.key;
        timers.delete(k);
        String requestId = TimeKeys.id(k);
        Bytes requestKey = key(requestId);
        if (TimeKeys.tag(k) == GC) {
          decisions.delete(requestKey);
          continue;
        }
        byte[] current = decisions.get(requestKey);
        if (current == null || current[0] != 'o' || ByteBuffer.wrap(current, 1, 8).getLong() != TimeKeys.at(k)) continue;
        Envelope command = Envelope.decode(java.util.Arrays.copyOfRange(current, 9, current.length));
        long deadline = TimeKeys.at(k);
        Value payload = Envelope.map("code", ValueFactory.newString("WEIR_ERR_DEADLINE_EXCEEDED"),
            "message", ValueFactory.newString("no result before the deadline (" + java.time.Instant.ofEpochMilli(deadline) + ")"),
            "deadline", Envelope.timestamp(deadline));
        long firedAt = System.currentTimeMillis();
        decide(requestKey, requestId, (byte) 't');
        context.forward(new Record<>(requestKey.get(), command.result("timeout", payload, firedAt), firedAt), "outcomes");
      }
    }

    private static String outcomeName(byte b) {
      return b == 'e' ? "error" : b == 't' ? "timeout" : "ok";
    }
  }
}
