package dev.weir.bench;

import java.io.IOException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.msgpack.core.MessageBufferPacker;
import org.msgpack.core.MessagePack;
import org.msgpack.core.MessageUnpacker;
import org.msgpack.value.Value;
import org.msgpack.value.ValueFactory;

/**
 * A weir envelope as envelope/codec.ts writes it: one msgpack map with the schema version `v` = 1. Only what
 * the baseline needs is read; everything else is kept as msgpack values so follow-ups carry it on.
 * msgpackr writes integers above 2^32 (timestamps) as float64, so times are read from any number type.
 */
final class Envelope {
  static final int SCHEMA_VERSION = 1;
  static final int MAX_BREADCRUMBS = 32;
  private static final Pattern TRACEPARENT = Pattern.compile("^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$");
  private static final SecureRandom RANDOM = new SecureRandom();

  final String id;
  final String requestId;
  final String kind;
  final String topicAlias;
  final String contextPath;
  final String alias;
  final String status;
  final String clientSessionId;
  final long createdAt;
  /** -1 when the envelope has no deadline. */
  final long deadline;
  final Value payload;
  final List<Value> breadcrumbs;
  final String traceparent;
  final int retryCount;

  private Envelope(Map<String, Value> m) {
    id = requiredString(m, "id");
    requestId = requiredString(m, "requestId");
    kind = requiredString(m, "kind");
    if (!kind.equals("command") && !kind.equals("result") && !kind.equals("event")) throw new IllegalArgumentException("kind must be command, result or event");
    topicAlias = optionalString(m, "topicAlias");
    Value path = m.get("contextPath");
    if (path == null || !path.isStringValue()) throw new IllegalArgumentException("contextPath must be a string");
    contextPath = path.asStringValue().asString();
    alias = requiredString(m, "alias");
    status = optionalString(m, "status");
    clientSessionId = optionalString(m, "clientSessionId");
    createdAt = time(m.get("createdAt"), "createdAt");
    deadline = m.containsKey("deadline") ? time(m.get("deadline"), "deadline") : -1;
    if (!m.containsKey("payload")) throw new IllegalArgumentException("payload is missing");
    payload = m.get("payload");
    Value crumbs = m.get("breadcrumbs");
    if (crumbs == null || !crumbs.isArrayValue()) throw new IllegalArgumentException("breadcrumbs must be an array");
    breadcrumbs = crumbs.asArrayValue().list();
    Value trace = m.get("trace");
    String parent = null;
    if (trace != null && trace.isMapValue()) {
      Value tp = trace.asMapValue().map().get(ValueFactory.newString("traceparent"));
      if (tp != null && tp.isStringValue()) parent = tp.asStringValue().asString();
    }
    traceparent = parent;
    Value retry = m.get("retry");
    int count = 0;
    if (retry != null && retry.isMapValue()) {
      Value c = retry.asMapValue().map().get(ValueFactory.newString("count"));
      if (c != null && c.isIntegerValue()) count = c.asIntegerValue().toInt();
    }
    retryCount = count;
  }

  /** Throws IllegalArgumentException when `bytes` is not one valid version-1 envelope. */
  static Envelope decode(byte[] bytes) {
    if (bytes == null || bytes.length == 0) throw new IllegalArgumentException("empty record: not an envelope");
    Value value;
    try (MessageUnpacker unpacker = MessagePack.newDefaultUnpacker(bytes)) {
      value = unpacker.unpackValue();
      if (unpacker.hasNext()) throw new IllegalArgumentException("trailing bytes after the envelope");
    } catch (IOException | RuntimeException e) {
      throw new IllegalArgumentException("not a msgpack document: " + e.getMessage(), e);
    }
    if (!value.isMapValue()) throw new IllegalArgumentException("expected a msgpack map");
    Map<String, Value> m = new HashMap<>();
    for (Map.Entry<Value, Value> e : value.asMapValue().map().entrySet()) {
      if (e.getKey().isStringValue()) m.put(e.getKey().asStringValue().asString(), e.getValue());
    }
    Value v = m.get("v");
    if (v == null || !v.isIntegerValue() || v.asIntegerValue().toInt() != SCHEMA_VERSION) throw new IllegalArgumentException("missing or unsupported schema version");
    return new Envelope(m);
  }

  /** The id the dedupe store remembers: a retried command is a new delivery (weir: `id#count`). */
  String dedupeId() {
    return retryCount > 0 ? id + "#" + retryCount : id;
  }

  /** A result caused by this envelope (weir's followUp): same requestId, session and trace id, this one appended to the breadcrumbs. */
  byte[] result(String resultStatus, Value resultPayload, long now) {
    return followUp("result", alias, resultStatus, resultPayload, now);
  }

  byte[] event(String eventAlias, Value eventPayload, long now) {
    return followUp("event", eventAlias, null, eventPayload, now);
  }

  private byte[] followUp(String newKind, String newAlias, String newStatus, Value newPayload, long now) {
    List<Value> crumbs = new ArrayList<>(breadcrumbs);
    crumbs.add(map("id", ValueFactory.newString(id), "kind", ValueFactory.newString(kind), "contextPath", ValueFactory.newString(contextPath),
        "alias", ValueFactory.newString(alias), "at", timestamp(createdAt)));
    while (crumbs.size() > MAX_BREADCRUMBS) crumbs.remove(0);
    List<Value> kv = new ArrayList<>();
    add(kv, "v", ValueFactory.newInteger(SCHEMA_VERSION));
    add(kv, "id", ValueFactory.newString(UUID.randomUUID().toString()));
    add(kv, "requestId", ValueFactory.newString(requestId));
    if (clientSessionId != null) add(kv, "clientSessionId", ValueFactory.newString(clientSessionId));
    add(kv, "kind", ValueFactory.newString(newKind));
    add(kv, "contextPath", ValueFactory.newString(contextPath));
    add(kv, "alias", ValueFactory.newString(newAlias));
    add(kv, "payload", newPayload);
    if (newStatus != null) add(kv, "status", ValueFactory.newString(newStatus));
    add(kv, "createdAt", timestamp(now));
    add(kv, "breadcrumbs", ValueFactory.newArray(crumbs));
    add(kv, "trace", map("traceparent", ValueFactory.newString(childTraceparent())));
    try (MessageBufferPacker packer = MessagePack.newDefaultBufferPacker()) {
      packer.packValue(ValueFactory.newMap(kv.toArray(new Value[0])));
      return packer.toByteArray();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private String childTraceparent() {
    Matcher m = traceparent == null ? null : TRACEPARENT.matcher(traceparent);
    if (m == null || !m.matches()) return "00-" + hex(16) + "-" + hex(8) + "-01";
    return "00-" + m.group(1) + "-" + hex(8) + "-" + m.group(3);
  }

  /**
   * A time in ms as msgpackr writes it: above 2^32 as float64 (exact up to 2^53). msgpackr reads msgpack's
   * 64-bit integers as BigInt, which weir's envelope validation rejects.
   */
  static Value timestamp(long ms) {
    return ms >= 0 && ms <= 0xFFFFFFFFL ? ValueFactory.newInteger(ms) : ValueFactory.newFloat((double) ms);
  }

  static Value map(Object... pairs) {
    Value[] kv = new Value[pairs.length];
    for (int i = 0; i < pairs.length; i += 2) {
      kv[i] = ValueFactory.newString((String) pairs[i]);
      kv[i + 1] = (Value) pairs[i + 1];
    }
    return ValueFactory.newMap(kv);
  }

  /** Field of a msgpack map payload, or null. */
  static Value field(Value map, String name) {
    return map != null && map.isMapValue() ? map.asMapValue().map().get(ValueFactory.newString(name)) : null;
  }

  private static void add(List<Value> kv, String key, Value value) {
    kv.add(ValueFactory.newString(key));
    kv.add(value);
  }

  private static String hex(int bytes) {
    byte[] b = new byte[bytes];
    RANDOM.nextBytes(b);
    StringBuilder s = new StringBuilder(bytes * 2);
    for (byte x : b) s.append(String.format("%02x", x));
    return s.toString();
  }

  private static String requiredString(Map<String, Value> m, String name) {
    Value v = m.get(name);
    if (v == null || !v.isStringValue() || v.asStringValue().asString().isEmpty()) throw new IllegalArgumentException(name + " must be a non-empty string");
    return v.asStringValue().asString();
  }

  private static String optionalString(Map<String, Value> m, String name) {
    Value v = m.get(name);
    return v != null && v.isStringValue() ? v.asStringValue().asString() : null;
  }

  static long time(Value v, String name) {
    if (v != null && v.isIntegerValue()) return v.asIntegerValue().toLong();
    if (v != null && v.isFloatValue()) {
      double d = v.asFloatValue().toDouble();
      if (d >= 0 && d == Math.rint(d)) return (long) d;
    }
    throw new IllegalArgumentException(name + " must be a non-negative integer (ms since the epoch)");
  }
}
