// Package notify is god's side of the sd_notify protocol: the unixgram socket every job gets as
// NOTIFY_SOCKET (Server), the parser of its messages (Parse), and a logger that says what
// strangers cause at most once a second (LogLimiter). The sender of every datagram is known from
// the kernel (SCM_CREDENTIALS); which job it belongs to is the supervisor's business.
package notify
