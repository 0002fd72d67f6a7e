/* What the broker clients share: the clock, flag parsing and the report of a run, in the same two
 * lines as bench/load/load_client prints (a human summary and "RESULT {json}" for bench/run.py). */
#ifndef CALLMESH_BENCH_BROKERS_RPC_REPORT_H_
#define CALLMESH_BENCH_BROKERS_RPC_REPORT_H_

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Seconds on the monotonic clock. */
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The value of `arg` if it is "<name>=<value>", else NULL. */
static inline const char* flag_value(const char* arg, const char* name) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) == 0 && arg[n] == '=') return arg + n + 1;
  return NULL;
}

/* The flags both clients take. Returns 1 if `arg` was one of them (and stores its value). */
static inline int common_flag(const char* arg, int* in_flight, double* duration, double* warmup,
                              int* payload_bytes, const char** label) {
  const char* v;
  if ((v = flag_value(arg, "--in-flight"))) {
    *in_flight = atoi(v);
  } else if ((v = flag_value(arg, "--duration"))) {
    *duration = atof(v);
  } else if ((v = flag_value(arg, "--warmup"))) {
    *warmup = atof(v);
  } else if ((v = flag_value(arg, "--payload-bytes"))) {
    *payload_bytes = atoi(v);
  } else if ((v = flag_value(arg, "--label"))) {
    *label = v;
  } else {
    return 0;
  }
  return 1;
}

static inline int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of `sorted`, n values; 0 for none. */
static inline double percentile(const double* sorted, size_t n, double p) {
  if (n == 0) return 0;
  size_t index = (size_t)(p / 100.0 * n);
  if (index >= n) index = n - 1;
  return sorted[index];
}

/* Sorts `latencies` (microseconds, n values measured over `seconds`) and prints the report of
 * mode `mode` ("rabbitmq", "nats"); `unfinished` calls were still outstanding at the end. */
static inline void print_report(const char* mode, const char* label, int in_flight,
                                double* latencies, size_t n, double seconds, int unfinished) {
  qsort(latencies, n, sizeof(double), compare_doubles);
  const double throughput = n / seconds;
  const double p50 = percentile(latencies, n, 50), p90 = percentile(latencies, n, 90);
  const double p99 = percentile(latencies, n, 99), p999 = percentile(latencies, n, 99.9);
  printf(
      "%-6s in_flight=%d: %.0f calls/s  p50=%.0fus p90=%.0fus p99=%.0fus p99.9=%.0fus  "
      "unfinished=%d\n",
      mode, in_flight, throughput, p50, p90, p99, p999, unfinished);
  printf(
      "RESULT {\"label\":\"%s\",\"mode\":\"%s\",\"in_flight\":%d,\"calls\":%zu,"
      "\"seconds\":%.3f,\"throughput\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
      "\"p999_us\":%.1f,\"errors\":{%s}}\n",
      label, mode, in_flight, n, seconds, throughput, p50, p90, p99, p999,
      unfinished > 0 ? "\"unfinished\":1" : "");
  fflush(stdout);
}

#endif /* CALLMESH_BENCH_BROKERS_RPC_REPORT_H_ */
