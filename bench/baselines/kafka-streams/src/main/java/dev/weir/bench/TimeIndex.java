package dev.weir.bench;

import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * A time-ordered store (keys from TimeKeys) scanned by a punctuator for due rows.
 *
 * Kafka Streams' RocksDB range iterator checks the upper bound in Java (no RocksDB iterate_upper_bound), so a
 * scan that starts at time 0 steps over every tombstone left by earlier deliveries until compaction removes
 * them: quadratic. Each scan therefore starts where the previous one ended (rows written for an earlier time
 * move the start back), and callers avoid deleting rows ahead of "now" (they let them fire and skip them).
 */
final class TimeIndex {
  private final KeyValueStore<Bytes, byte[]> store;
  /** Every row before this time has been returned by due() (reset to 0 whenever the processor is re-initialized). */
  private long scanFrom = 0;

  TimeIndex(KeyValueStore<Bytes, byte[]> store) {
    this.store = store;
  }

  void put(long at, byte tag, String id, byte[] value) {
    store.put(TimeKeys.of(at, tag, id), value);
    if (at < scanFrom) scanFrom = at;
  }

  void delete(Bytes key) {
    store.delete(key);
  }

  /** Rows due at `now` or earlier, oldest first, at most `max`; the caller deletes each one it handles. */
  List<KeyValue<Bytes, byte[]>> due(long now, int max) {
    List<KeyValue<Bytes, byte[]>> due = new ArrayList<>();
    try (KeyValueIterator<Bytes, byte[]> it = store.range(TimeKeys.from(scanFrom), TimeKeys.upTo(now))) {
      while (it.hasNext() && due.size() < max) due.add(it.next());
    }
    scanFrom = due.size() < max ? now + 1 : TimeKeys.at(due.get(due.size() - 1).key);
    return due;
  }
}
