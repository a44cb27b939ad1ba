// tasks/evaluate.h — scoring a model's predictions on a task split with the task's metrics.
//
// Classification and regression score the head's outputs (argmax / value); generation
// decodes each prompt (tasks/decode.h) and compares the decoded text with every reference:
// exact match (against any reference) and error rates over whitespace-separated tokens
// (phonemes for g2p), BLEU-4 and ROUGE for the text-generation tasks.
#ifndef LORALAB_EVALUATE_H
#define LORALAB_EVALUATE_H

#include "core/model.h"
#include "tasks/decode.h"
#include "tasks/format.h"
#include "tasks/task.h"
#include "tasks/tokenizer.h"

// The value of one named metric (task->metrics names). NAN for a name the kind lacks.
double evaluate_classification(const char *metric, const int *pred, const int *gold, int n, int n_classes);
double evaluate_regression(const char *metric, const double *pred, const double *gold, int n);

// Decodes the prompts of examples rows[0..n) of split s (encoded as e) and scores the
// continuations against the references with each of task->metrics; values[k] for
// task->metrics[k]. Returns 0, or -1 with err_set().
int evaluate_generation(Model *m, const Task *task, SplitId s, const Encoded *e, const Tokenizer *tok,
                        int max_len, const int *rows, int n, const DecodeOptions *opt, double *values);

#endif
