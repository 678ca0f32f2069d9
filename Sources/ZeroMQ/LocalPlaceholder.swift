// LOCAL PLACEHOLDER (not committed): the ZeroMQ sources live in another branch.
