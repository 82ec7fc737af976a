/* How C firmware uses the MCU client (mcu_client.h): send a Classify request, feed what the
 * UART receives, read the answer. `.ci/run` compiles it against the header;
 * `uart_write`/`uart_read` stand for the board's own driver. */
#include <stdalign.h>
#include <string.h>

#include "mcu_client.h"

void uart_write(const uint8_t *bytes, size_t len);
size_t uart_read(uint8_t *bytes, size_t capacity);

static alignas(KINGLET_RECEIVER_ALIGN) uint8_t receiver_storage[KINGLET_RECEIVER_BYTES];

/* Returns the winning label's index for `text`, or -1 when no answer came in `polls` reads. */
int classify_over_uart(uint32_t id, const char *text, int polls) {
  Receiver *rx = (Receiver *)receiver_storage;
  kinglet_receiver_reset(rx);
  uint8_t text_bytes[KINGLET_TEXT_BYTES] = {0};
  size_t text_len = strlen(text);
  if (text_len > KINGLET_TEXT_BYTES) return -1;
  memcpy(text_bytes, text, text_len);
  uint8_t frame[KINGLET_FRAME_BYTES];
  size_t frame_len = kinglet_encode_classify(id, &text_bytes, text_len, &frame);
  if (frame_len == 0) return -1;
  uart_write(frame, frame_len);
  uint8_t chunk[KINGLET_FEED_BYTES];
  for (int i = 0; i < polls; i++) {
    size_t n = uart_read(chunk, sizeof chunk);
    if (kinglet_receiver_feed(rx, &chunk, n) == 1) {
      KingletClassified answer = kinglet_receiver_last(rx);
      if (answer.id == id) return answer.label_index;
    }
  }
  return -1;
}
