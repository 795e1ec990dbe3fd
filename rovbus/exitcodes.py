"""The exit statuses of every rovbus command and daemon, defined once.

=====  ====================  ==================================================================
0      ``EXIT_OK``           done; a daemon stopped by SIGTERM or a shutdown request
1      ``EXIT_FAILURE``      ran, and what it waited for or checked did not happen (a timeout,
                             an error reply, a node down, a write that failed)
2      ``EXIT_USAGE``        refused to start: bad arguments, an invalid system file, a daemon
                             that could not start as configured (before ``READY=1``)
130    ``EXIT_INTERRUPTED``  stopped by Ctrl-C (SIGINT), as a shell reports it (128 + 2)
=====  ====================  ==================================================================
"""

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
