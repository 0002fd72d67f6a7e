/* The check of a librabbitmq reply that both RabbitMQ clients make after every broker call. */
#ifndef CALLMESH_BENCH_BROKERS_AMQP_CHECK_H_
#define CALLMESH_BENCH_BROKERS_AMQP_CHECK_H_

#include <amqp.h>
#include <stdio.h>
#include <stdlib.h>

/* Returns if `reply` is normal; else prints "<program>: <what>: <why>" (a library error, the code
 * and text of a closed channel, or "server exception") and exits 1. */
static inline void amqp_check(const char* program, amqp_rpc_reply_t reply, const char* what) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL) return;
  if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    fprintf(stderr, "%s: %s: %s\n", program, what, amqp_error_string2(reply.library_error));
  } else if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
             reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    const amqp_channel_close_t* close = (const amqp_channel_close_t*)reply.reply.decoded;
    fprintf(stderr, "%s: %s: channel closed %d %.*s\n", program, what, close->reply_code,
            (int)close->reply_text.len, (const char*)close->reply_text.bytes);
  } else {
    fprintf(stderr, "%s: %s: server exception\n", program, what);
  }
  exit(1);
}

#endif  // CALLMESH_BENCH_BROKERS_AMQP_CHECK_H_
