// nats_fanout: the NATS JetStream side of the pub/sub fan-out comparison (bench/run.py --only
// pubsub), on libnats (C).
//
//   nats_fanout --port=4222 --in-flight=64 --duration=10 --subscribers=3 --payload-bytes=1024
//
// A file-storage stream on one subject, recreated empty; one durable push consumer per subscriber
// (explicit acks, manual ack after the handler, deliver new); the publisher publishes
// asynchronously with at most --in-flight publishes awaiting the stream's ack (closed loop) for
// --duration seconds, then waits for every ack and for every subscriber to have received every
// message. Note: nats-server 2.9 (Debian 12) acknowledges a publish once the stream has written
// it, without an fsync (it syncs every 2 minutes; `sync_interval` arrived in 2.10), unlike
// callmesh and RabbitMQ. Prints the same lines as bench/pubsub/pubsub_bench.
#include <nats/nats.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/brokers/rpc_report.h"

#define STREAM "CALLMESH_BENCH_FANOUT"
#define SUBJECT "callmesh.bench.fanout"
#define MAX_SUBSCRIBERS 16
#define RING (1u << 24)

static int g_port = 4222;
static int g_in_flight = 64;
static int g_subscribers = 3;
static double g_duration = 10, g_warmup = 0;
static int g_payload = 1024;
static const char* g_label = "";

static atomic_llong g_delivered[MAX_SUBSCRIBERS];
static atomic_llong g_last_ack_ns;
static atomic_llong g_acked;
static atomic_llong g_failed;
static double* g_sent_at;
static double* g_latencies;

static long long now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char* what, natsStatus s) __attribute__((noreturn));
static void die(const char* what, natsStatus s) {
  fprintf(stderr, "nats_fanout: %s: %s\n", what, natsStatus_GetText(s));
  exit(1);
}

static void on_message(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  int index = (int)(intptr_t)closure;
  natsMsg_Ack(msg, NULL);
  natsMsg_Destroy(msg);
  atomic_fetch_add(&g_delivered[index], 1);
  atomic_store(&g_last_ack_ns, now_ns());
}

static void on_publish_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  if (pae != NULL) {
    atomic_fetch_add(&g_failed, 1);
  } else {
    const char* index = NULL;
    if (natsMsgHeader_Get(msg, "i", &index) == NATS_OK && index != NULL) {
      unsigned long long i = strtoull(index, NULL, 10);
      long long n = atomic_fetch_add(&g_acked, 1);
      g_latencies[n % RING] = now_ns() / 1e3 - g_sent_at[i % RING];
    }
  }
  natsMsg_Destroy(msg);
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* v;
    if (common_flag(argv[i], &g_in_flight, &g_duration, &g_warmup, &g_payload, &g_label)) {
    } else if ((v = flag_value(argv[i], "--port"))) {
      g_port = atoi(v);
    } else if ((v = flag_value(argv[i], "--subscribers"))) {
      g_subscribers = atoi(v);
    } else {
      fprintf(stderr, "nats_fanout: unknown flag %s\n", argv[i]);
      return 1;
    }
  }
  g_sent_at = calloc(RING, sizeof(double));
  g_latencies = calloc(RING, sizeof(double));
  char url[64];
  snprintf(url, sizeof url, "nats://127.0.0.1:%d", g_port);
  natsConnection* nc = NULL;
  natsStatus s = natsConnection_ConnectTo(&nc, url);
  if (s != NATS_OK) die("connect", s);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.PublishAsync.MaxPending = g_in_flight;
  jo.PublishAsync.AckHandler = on_publish_ack;
  jo.PublishAsync.StallWait = 60000;
  jsCtx* js = NULL;
  if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) die("jetstream", s);
  jsErrCode jerr = 0;
  js_DeleteStream(js, STREAM, NULL, &jerr);  // start empty (absent the first time)
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  const char* subjects[] = {SUBJECT};
  sc.Name = STREAM;
  sc.Subjects = subjects;
  sc.SubjectsLen = 1;
  sc.Storage = js_FileStorage;
  if ((s = js_AddStream(NULL, js, &sc, NULL, &jerr)) != NATS_OK) die("add stream", s);
  natsSubscription* subs[MAX_SUBSCRIBERS];
  char durable[MAX_SUBSCRIBERS][32];
  for (int i = 0; i < g_subscribers; ++i) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    snprintf(durable[i], sizeof durable[i], "subscriber-%d", i + 1);
    so.Config.Durable = durable[i];
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverNew;
    so.Config.MaxAckPending = 1024;
    so.ManualAck = true;
    s = js_Subscribe(&subs[i], js, SUBJECT, on_message, (void*)(intptr_t)i, NULL, &so, &jerr);
    if (s != NATS_OK) die("subscribe", s);
    natsSubscription_SetPendingLimits(subs[i], -1, -1);
  }

  char* body = malloc(g_payload);
  memset(body, 'x', g_payload);
  const long long start = now_ns();
  const long long stop = start + (long long)(g_duration * 1e9);
  unsigned long long published = 0;
  while (now_ns() < stop) {
    natsMsg* msg = NULL;
    if ((s = natsMsg_Create(&msg, SUBJECT, NULL, body, g_payload)) != NATS_OK) die("msg", s);
    char index[32];
    ++published;
    snprintf(index, sizeof index, "%llu", published);
    natsMsgHeader_Set(msg, "i", index);
    g_sent_at[published % RING] = now_ns() / 1e3;
    // Blocks while --in-flight publishes await their ack.
    if ((s = js_PublishMsgAsync(js, &msg, NULL)) != NATS_OK) die("publish", s);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 120000;
  if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK) die("publish complete", s);
  const double publish_s = (now_ns() - start) / 1e9;
  const long long expected = (long long)published * g_subscribers;
  long long delivered = 0;
  for (int wait = 0; wait < 12000; ++wait) {
    delivered = 0;
    for (int i = 0; i < g_subscribers; ++i) delivered += atomic_load(&g_delivered[i]);
    if (delivered >= expected) break;
    usleep(10000);
  }
  const double deliver_s = (atomic_load(&g_last_ack_ns) - start) / 1e9;
  long long acked = atomic_load(&g_acked);
  size_t n = acked < (long long)RING ? (size_t)acked : RING;
  qsort(g_latencies, n, sizeof(double), compare_doubles);
  const double p50 = n ? g_latencies[n / 2] : 0, p99 = n ? g_latencies[(size_t)(n * 0.99)] : 0;
  printf(
      "%s: %llu published (%.0f/s, p50 %.0f us, p99 %.0f us), %lld of %lld deliveries (%.0f/s), "
      "%lld failed\n",
      g_label, published, published / publish_s, p50, p99, delivered, expected,
      delivered / deliver_s, (long long)atomic_load(&g_failed));
  printf(
      "RESULT {\"label\":\"%s\",\"in_flight\":%d,\"subscribers\":%d,\"published\":%llu,"
      "\"publish_per_s\":%.1f,\"publish_p50_us\":%.0f,\"publish_p99_us\":%.0f,"
      "\"delivered\":%lld,\"expected\":%lld,\"delivered_per_s\":%.1f,\"failed\":%lld}\n",
      g_label, g_in_flight, g_subscribers, published, published / publish_s, p50, p99, delivered,
      expected, delivered / deliver_s, (long long)atomic_load(&g_failed));
  fflush(stdout);
  for (int i = 0; i < g_subscribers; ++i) {
    natsSubscription_Unsubscribe(subs[i]);
    natsSubscription_Destroy(subs[i]);
  }
  js_DeleteStream(js, STREAM, NULL, &jerr);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return delivered == expected && atomic_load(&g_failed) == 0 ? 0 : 1;
}
