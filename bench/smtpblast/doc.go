// Command smtpblast is a concurrent SMTP (or HTTP inject) load generator.
//
//	smtpblast -server 127.0.0.1:2526 -connections 10 -messages 20000 -size 2k
//	smtpblast -server 127.0.0.1:2525 -duration 30s -rate 500/s -pipelining \
//	    -size-dist 2k:70,20k:25,100k:5 -rcpts 3 -domains a.test:3,b.test:1 -ids ids.tsv
//	smtpblast -server 127.0.0.1:2525 -domains @domains.txt  # "domain:weight" lists, any number a line
//	smtpblast -http http://127.0.0.1:8000 -http-mode inject -messages 1000
//	smtpblast -server 127.0.0.1:2525 -starttls -ca ca.pem -messages 1000
//
// Every message carries "X-Blast-Id: <run>-<seq>" and a matching Message-ID.
// At the end it prints messages sent/acked/failed, messages/s, latency
// percentiles (MAIL to final reply, and end of data to that reply), replies
// by code and its own CPU seconds,
// as text or with -json as one JSON object. Progress goes to stderr: a line
// redrawn in place when stderr is a terminal, else a whole line every
// -progress (default 5s; 0: none), for files and CI logs. The run stops at -messages or -duration
// (10 minutes when not given), whichever comes first, or on SIGINT/SIGTERM.
// The work is done by package gannet/bench/smtpblast/blast.
package main
