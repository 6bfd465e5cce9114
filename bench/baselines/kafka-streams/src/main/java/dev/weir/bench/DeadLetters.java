package dev.weir.bench;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.common.header.Headers;
import org.apache.kafka.common.header.internals.RecordHeaders;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;

/** A record that cannot be handled goes, with weir's dead-letter headers, to the dead-letter sink; never a crash. */
final class DeadLetters {
  private DeadLetters() {}

  static void send(ProcessorContext<byte[], byte[]> context, String sink, Record<byte[], byte[]> record, String code, String message) {
    Headers headers = new RecordHeaders(record.headers().toArray());
    headers.add("weir.error.code", utf8(code));
    headers.add("weir.error.message", utf8(message));
    context.recordMetadata().ifPresent(m -> {
      headers.add("weir.origin.topic", utf8(m.topic()));
      headers.add("weir.origin.partition", utf8(String.valueOf(m.partition())));
      headers.add("weir.origin.offset", utf8(String.valueOf(m.offset())));
    });
    context.forward(new Record<>(record.key(), record.value(), record.timestamp(), headers), sink);
  }

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
