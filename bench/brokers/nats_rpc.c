// nats_rpc: the NATS side of the sync request-reply comparison, on libnats (the C client).
//
//   nats_rpc responder --url=nats://127.0.0.1:4222
//   nats_rpc requester --url=nats://127.0.0.1:4222 --in-flight=64 --duration=10 --warmup=1
//
// The responder subscribes to "callmesh.bench.echo" and answers every request on its reply subject
// with "Hello, " + body (like the greeter). The requester keeps --in-flight requests outstanding
// (closed loop): each request carries the reply subject "<inbox>.<n>", one wildcard subscription
// receives all replies, and a reply starts the next request. Latency runs from the publish of a
// request to the arrival of its reply. Both sides set SendAsap (no client-side write batching, the
// low-latency setting). Prints the same human line and "RESULT {json}" line as load_client.
#include <nats/nats.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/brokers/rpc_report.h"

#define SUBJECT "callmesh.bench.echo"
#define CAP (1u << 20)

static const char* g_url = "nats://127.0.0.1:4222";
static int g_in_flight = 64;
static double g_duration = 10, g_warmup = 1;
static int g_payload = 1024;
static const char* g_label = "";

static void check(natsStatus s, const char* what) {
  if (s == NATS_OK) return;
  fprintf(stderr, "nats_rpc: %s: %s\n", what, natsStatus_GetText(s));
  exit(1);
}

static natsConnection* connect_nats(void) {
  natsOptions* opts = NULL;
  natsConnection* nc = NULL;
  check(natsOptions_Create(&opts), "options");
  check(natsOptions_SetURL(opts, g_url), "url");
  check(natsOptions_SetSendAsap(opts, true), "send asap");
  check(natsConnection_Connect(&nc, opts), "connect");
  natsOptions_Destroy(opts);
  return nc;
}

static void on_request(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)sub;
  (void)closure;
  const char* reply_to = natsMsg_GetReply(msg);
  int len = natsMsg_GetDataLength(msg);
  static char* buffer = NULL;  // one subscription thread calls this
  static int cap = 0;
  if (len + 7 > cap) {
    cap = len + 7;
    buffer = realloc(buffer, cap);
  }
  memcpy(buffer, "Hello, ", 7);
  memcpy(buffer + 7, natsMsg_GetData(msg), len);
  if (reply_to != NULL) natsConnection_Publish(nc, reply_to, buffer, len + 7);
  natsMsg_Destroy(msg);
}

static int run_responder(void) {
  natsConnection* nc = connect_nats();
  natsSubscription* sub = NULL;
  check(natsConnection_Subscribe(&sub, nc, SUBJECT, on_request, NULL), "subscribe");
  check(natsSubscription_SetPendingLimits(sub, -1, -1), "pending limits");
  check(natsConnection_Flush(nc), "flush");
  printf("nats_rpc responder ready\n");
  fflush(stdout);
  for (;;) sleep(3600);
  return 0;
}

typedef struct {
  natsConnection* nc;
  pthread_mutex_t mu;
  char inbox[128];
  double* starts;  // by request number % CAP
  double* latencies;
  size_t latency_n, latency_cap;
  char* body;
  uint64_t next;
  int outstanding;
  volatile int running;
  double measure_from, measure_to;
} requester_t;

static requester_t g;

// Publishes the next request; call with g.mu held.
static void publish_next(void) {
  char reply[160];
  uint64_t n = ++g.next;
  snprintf(reply, sizeof reply, "%s.%llu", g.inbox, (unsigned long long)n);
  g.starts[n % CAP] = now_s();
  ++g.outstanding;
  check(natsConnection_PublishRequest(g.nc, SUBJECT, reply, g.body, g_payload), "publish");
}

static void on_reply(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* closure) {
  (void)nc;
  (void)sub;
  (void)closure;
  const double now = now_s();
  const char* subject = natsMsg_GetSubject(msg);
  const char* dot = strrchr(subject, '.');
  uint64_t n = dot ? strtoull(dot + 1, NULL, 10) : 0;
  pthread_mutex_lock(&g.mu);
  double start = g.starts[n % CAP];
  if (start > 0) {
    g.starts[n % CAP] = 0;
    --g.outstanding;
    if (now >= g.measure_from && now < g.measure_to) {
      if (g.latency_n == g.latency_cap) {
        g.latency_cap *= 2;
        g.latencies = realloc(g.latencies, g.latency_cap * sizeof(double));
      }
      g.latencies[g.latency_n++] = (now - start) * 1e6;
    }
    if (g.running) publish_next();
  }
  pthread_mutex_unlock(&g.mu);
  natsMsg_Destroy(msg);
}

static int run_requester(void) {
  g.nc = connect_nats();
  pthread_mutex_init(&g.mu, NULL);
  snprintf(g.inbox, sizeof g.inbox, "_INBOX.callmesh_bench.%d", (int)getpid());
  char wildcard[160];
  snprintf(wildcard, sizeof wildcard, "%s.*", g.inbox);
  natsSubscription* sub = NULL;
  check(natsConnection_Subscribe(&sub, g.nc, wildcard, on_reply, NULL), "subscribe");
  check(natsSubscription_SetPendingLimits(sub, -1, -1), "pending limits");
  check(natsConnection_Flush(g.nc), "flush");
  g.starts = calloc(CAP, sizeof(double));
  g.latency_cap = 1 << 20;
  g.latencies = malloc(g.latency_cap * sizeof(double));
  g.body = malloc(g_payload);
  memset(g.body, 'x', g_payload);
  g.measure_from = now_s() + g_warmup;
  g.measure_to = g.measure_from + g_duration;
  g.running = 1;
  pthread_mutex_lock(&g.mu);
  for (int i = 0; i < g_in_flight; ++i) publish_next();
  pthread_mutex_unlock(&g.mu);
  while (now_s() < g.measure_to) nats_Sleep(50);
  pthread_mutex_lock(&g.mu);
  g.running = 0;
  pthread_mutex_unlock(&g.mu);
  for (int i = 0; i < 100; ++i) {  // up to 5 s for the last replies
    pthread_mutex_lock(&g.mu);
    int left = g.outstanding;
    pthread_mutex_unlock(&g.mu);
    if (left == 0) break;
    nats_Sleep(50);
  }
  pthread_mutex_lock(&g.mu);
  print_report("nats", g_label, g_in_flight, g.latencies, g.latency_n, g_duration, g.outstanding);
  _exit(0);
}

int main(int argc, char** argv) {
  if (argc < 2 || (strcmp(argv[1], "responder") != 0 && strcmp(argv[1], "requester") != 0)) {
    fprintf(stderr,
            "usage: nats_rpc responder|requester [--url=U] [--in-flight=N] [--duration=S] "
            "[--warmup=S] [--payload-bytes=N] [--label=L]\n");
    return 2;
  }
  for (int i = 2; i < argc; ++i) {
    const char* v;
    if ((v = flag_value(argv[i], "--url")))
      g_url = v;
    else if (!common_flag(argv[i], &g_in_flight, &g_duration, &g_warmup, &g_payload, &g_label)) {
      fprintf(stderr, "nats_rpc: unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  if (g_in_flight < 1 || g_payload < 1 || g_duration <= 0) {
    fprintf(stderr, "nats_rpc: --in-flight >= 1, --payload-bytes >= 1, --duration > 0\n");
    return 2;
  }
  return strcmp(argv[1], "responder") == 0 ? run_responder() : run_requester();
}
