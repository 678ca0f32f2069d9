#ifndef COURIER_CZEROMQ_SHIM_H
#define COURIER_CZEROMQ_SHIM_H
// The system libzmq (Debian: libzmq3-dev). Only the ZeroMQ Swift module imports this.
#include <zmq.h>
#endif
