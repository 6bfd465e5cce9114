package dev.weir.bench;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.StoreBuilder;
import org.apache.kafka.streams.state.Stores;

/**
 * bench/partition.ts's `counting` topology: a per-key counter in a RocksDB store, and the input record
 * forwarded unchanged (one output per input).
 */
final class CountingTopology {
  private CountingTopology() {}

  static Topology build(Options o) {
    StoreBuilder<KeyValueStore<String, Long>> counts = Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore("counts"), Serdes.String(), Serdes.Long());
    if (o.caching) counts = counts.withCachingEnabled();
    Topology topology = new Topology();
    topology.addSource("input", Serdes.String().deserializer(), Serdes.ByteArray().deserializer(), o.input);
    topology.addProcessor("count", Counter::new, "input");
    topology.addStateStore(counts, "count");
    topology.addSink("out", o.output, Serdes.String().serializer(), Serdes.ByteArray().serializer(), "count");
    return topology;
  }

  static final class Counter implements Processor<String, byte[], String, byte[]> {
    private ProcessorContext<String, byte[]> context;
    private KeyValueStore<String, Long> counts;

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
      this.context = context;
      this.counts = context.getStateStore("counts");
    }

    @Override
    public void process(Record<String, byte[]> record) {
      Long current = counts.get(record.key());
      counts.put(record.key(), current == null ? 1L : current + 1);
      context.forward(record);
    }
  }
}
