// Package logsession tails the worker's own app through Heroku Platform API
// log sessions, for apps without a drain:
//
//	POST https://api.heroku.com/apps/{app}/log-sessions
//	Accept: application/vnd.heroku+json; version=3
//	Authorization: Bearer <HEROKU_API_KEY>
//	{"tail":true,"lines":0}
//
// answers 201 with {"logplex_url": "https://…"}; a GET of that URL streams the
// app's log lines as text until it ends (after about an hour):
//
//	2024-05-01T12:00:00.123456+00:00 app[web.1]: count#req=1 measure#db.latency=4ms
//
// A Tailer creates a session, reads the stream into an input.Processor, and
// when the stream ends or anything fails, creates a new session after an
// exponential backoff with jitter (reset after a healthy stream). Log sessions
// are best effort: high-volume apps may lose lines. Drains are the reliable
// path.
//
// The API key never appears in errors or logs, nor does the logplex_url's path
// or query (which grant access to the logs): only its host is reported.
package logsession
