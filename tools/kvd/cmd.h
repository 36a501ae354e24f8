/* tools/kvd/cmd.h: gort-kvd's commands, run against the store with their
 * replies appended to the connection's output buffer.
 *
 * kvd_process is the whole per-batch step of a connection, without I/O: it
 * runs every complete command in the input, and says when the output must be
 * written early (it passed RESP_WFLUSH) or the connection closed after it.
 * main.c wraps it in reads and writes; tests call it on bytes directly.
 */
#ifndef KVD_CMD_H
#define KVD_CMD_H

#include "resp.h"
#include "store.h"

enum {
    KVD_MORE = 0,  /* every complete command ran: write the replies, read more */
    KVD_FLUSH = 1, /* the replies passed RESP_WFLUSH: write them, call again */
    KVD_CLOSE = 2, /* write the replies, then close (protocol error, QUIT) */
};

int kvd_process(resp_conn *c, kv_store *s);

/* Run argv[0..argc) (argc >= 1), appending its reply. */
void kvd_exec(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc);

/* Number of commands kvd_exec knows (COMMAND COUNT). */
int kvd_command_count(void);

#endif /* KVD_CMD_H */
