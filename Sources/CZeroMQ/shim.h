#ifndef COURIER_CZEROMQ_SHIM_H
#define COURIER_CZEROMQ_SHIM_H
// The system libzmq (Debian: libzmq3-dev). Only the ZeroMQ Swift module imports this.
#include <zmq.h>

// libzmq's own error numbers are macro expressions Swift does not import; name them here.
static const int courier_zmq_ETERM = ETERM;
static const int courier_zmq_EFSM = EFSM;
static const int courier_zmq_ENOCOMPATPROTO = ENOCOMPATPROTO;
static const int courier_zmq_EMTHREAD = EMTHREAD;
#endif
