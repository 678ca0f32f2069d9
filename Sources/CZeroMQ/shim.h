#ifndef COURIER_CZEROMQ_SHIM_H
#define COURIER_CZEROMQ_SHIM_H
// The system libzmq (Debian: libzmq3-dev). Only the ZeroMQ Swift module imports this.
#include <zmq.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>

// libzmq's own error numbers are macro expressions Swift does not import; name them here.
static const int courier_zmq_ETERM = ETERM;
static const int courier_zmq_EFSM = EFSM;
static const int courier_zmq_ENOCOMPATPROTO = ENOCOMPATPROTO;
static const int courier_zmq_EMTHREAD = EMTHREAD;

// Names the calling thread (shown by top, gdb and /proc); at most 15 bytes are kept.
static inline void courier_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }
#endif
