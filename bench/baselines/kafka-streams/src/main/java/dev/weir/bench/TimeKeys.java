package dev.weir.bench;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.utils.Bytes;

/**
 * Keys of the time-ordered stores: 8-byte big-endian time, then a tag byte, then an id. RocksDB orders keys
 * bytewise, so a range scan from time 0 to "now" returns exactly the due entries, oldest first.
 */
final class TimeKeys {
  private TimeKeys() {}

  static Bytes of(long at, byte tag, String id) {
    byte[] idBytes = id.getBytes(StandardCharsets.UTF_8);
    return Bytes.wrap(ByteBuffer.allocate(9 + idBytes.length).putLong(at).put(tag).put(idBytes).array());
  }

  /** The smallest key of any entry due at `at` or later... */
  static Bytes from(long at) {
    return Bytes.wrap(ByteBuffer.allocate(8).putLong(at).array());
  }

  /** ...and the largest: every key whose time is <= `at` sorts before time `at + 1`. */
  static Bytes upTo(long at) {
    return Bytes.wrap(ByteBuffer.allocate(8).putLong(at + 1).array());
  }

  static long at(Bytes key) {
    return ByteBuffer.wrap(key.get()).getLong();
  }

  static byte tag(Bytes key) {
    return key.get()[8];
  }

  static String id(Bytes key) {
    byte[] k = key.get();
    return new String(k, 9, k.length - 9, StandardCharsets.UTF_8);
  }
}
