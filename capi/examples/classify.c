/* Classifies each text given on the command line with a kinglet bundle, through the C API,
 * and prints one JSON object per text (label, score, scores, tokens, truncated), as
 * `kinglet classify --json` does.
 *
 *   cc -I capi/include capi/examples/classify.c target/debug/libkinglet_capi.a -lm -lpthread -ldl \
 *      -o classify && ./classify models/sentiment.kinglet "a gorgeous, moving film"
 *
 * Exit status: kinglet's (3 model cannot be loaded, 4 bad input, ...), 2 for bad usage. */
#include <stdio.h>
#include <stdlib.h>

#include "kinglet.h"

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL TEXT...\n", argv[0]);
    return 2;
  }
  KingletModel *model = NULL;
  KingletStatus status = kinglet_load(argv[1], 0, &model);
  if (status != KingletOk) {
    fprintf(stderr, "classify: error: %s\n", kinglet_last_error());
    return (int)status;
  }
  if (kinglet_kind(model) != KingletClassifier) {
    fprintf(stderr, "classify: error: %s is not a text classifier\n", argv[1]);
    kinglet_free(model);
    return 2;
  }
  size_t labels = kinglet_label_count(model);
  float *scores = calloc(labels, sizeof(float));
  int exit_code = 0;
  for (int i = 2; i < argc && scores != NULL; i++) {
    KingletClassification answer;
    status = kinglet_classify(model, argv[i], &answer, scores, labels);
    if (status != KingletOk) {
      fprintf(stderr, "classify: error: %s\n", kinglet_last_error());
      if (exit_code == 0) exit_code = (int)status;
      continue;
    }
    printf("{\"label\":\"%s\",\"score\":%.9g,\"scores\":[", kinglet_label(model, answer.label_index),
           answer.score);
    for (size_t l = 0; l < labels; l++) printf("%s%.9g", l ? "," : "", scores[l]);
    printf("],\"tokens\":%zu,\"truncated\":%s}\n", answer.tokens, answer.truncated ? "true" : "false");
  }
  free(scores);
  kinglet_free(model);
  return exit_code;
}
