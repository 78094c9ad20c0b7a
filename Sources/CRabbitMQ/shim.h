// rabbitmq-c: Debian 12 ships 0.11 with <amqp.h>; 0.12+ moved the headers under <rabbitmq-c/…>.
#ifndef CRABBITMQ_SHIM_H
#define CRABBITMQ_SHIM_H
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#include <rabbitmq-c/ssl_socket.h>
#else
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#endif
#include <sys/time.h>

// amqp_login is variadic: Swift cannot call it. PLAIN login with user and password.
static inline amqp_rpc_reply_t CRabbitMQ_login_plain(amqp_connection_state_t state, const char *vhost, int channel_max,
                                                     int frame_max, int heartbeat, const char *user,
                                                     const char *password) {
    return amqp_login(state, vhost, channel_max, frame_max, heartbeat, AMQP_SASL_METHOD_PLAIN, user, password);
}

// amqp_cstring_bytes is a plain function, but amqp_empty_bytes / amqp_empty_table are globals Swift sees as vars.
static inline amqp_bytes_t CRabbitMQ_bytes(const void *p, size_t len) {
    amqp_bytes_t b; b.len = len; b.bytes = (void *)p; return b;
}
// Field values are tagged unions; these constructors keep union handling out of Swift.
static inline amqp_field_value_t CRabbitMQ_value_bytes(amqp_bytes_t b) {
    amqp_field_value_t v; v.kind = AMQP_FIELD_KIND_UTF8; v.value.bytes = b; return v;
}
static inline amqp_field_value_t CRabbitMQ_value_i64(int64_t i) {
    amqp_field_value_t v; v.kind = AMQP_FIELD_KIND_I64; v.value.i64 = i; return v;
}
static inline amqp_field_value_t CRabbitMQ_value_bool(int b) {
    amqp_field_value_t v; v.kind = AMQP_FIELD_KIND_BOOLEAN; v.value.boolean = b ? 1 : 0; return v;
}
static inline amqp_field_value_t CRabbitMQ_value_table(amqp_table_t t) {
    amqp_field_value_t v; v.kind = AMQP_FIELD_KIND_TABLE; v.value.table = t; return v;
}
static inline amqp_field_value_t CRabbitMQ_value_array(amqp_array_t a) {
    amqp_field_value_t v; v.kind = AMQP_FIELD_KIND_ARRAY; v.value.array = a; return v;
}
// struct timeval built in C: Swift attributes its memberwise initialiser to whichever module imported
// <sys/time.h> first, which MemberImportVisibility then rejects.
static inline struct timeval CRabbitMQ_timeval(double seconds) {
    struct timeval tv; tv.tv_sec = (time_t)seconds; tv.tv_usec = (suseconds_t)((seconds - (double)tv.tv_sec) * 1e6);
    return tv;
}
#endif
