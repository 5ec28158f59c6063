// Starts kinesalite (an in-memory Kinesis API emulator) on 127.0.0.1 only.
// kinesalite's own CLI listens on every interface, so we use its JS API.
//
// Usage: node server.js [port]   (default: $SLUICE_TESTENV_KINESIS_PORT or 14567)
'use strict'

const kinesalite = require('kinesalite')

const port = Number(process.argv[2] || process.env.SLUICE_TESTENV_KINESIS_PORT || 14567)
const delayMs = Number(process.env.SLUICE_TESTENV_KINESIS_DELAY_MS || 50)

const server = kinesalite({
  createStreamMs: delayMs,
  deleteStreamMs: delayMs,
  updateStreamMs: delayMs,
  // AWS's default account limit is 500 shards; tests create a stream each
  // and never delete it, so a stack kept up across several `make test`
  // runs reached 100 ("LimitExceededException: … shard limit").
  shardLimit: Number(process.env.SLUICE_TESTENV_KINESIS_SHARD_LIMIT || 100000),
})

// kinesalite throws from a request's 'error' event, so a client that goes
// away mid-request (a SIGKILLed consumer, an SDK call timing out) would take
// the whole emulator down, and every test after it. Such an abort concerns
// only that request: log it and go on. Anything else still stops the
// process.
process.on('uncaughtException', (err) => {
  if (err && (err.code === 'ECONNRESET' || err.message === 'aborted')) {
    console.error(`kinesalite: a client aborted its request (${err.message}); continuing`)
    return
  }
  console.error(err)
  process.exit(1)
})

server.on('error', (err) => {
  console.error(`kinesalite: ${err.message}`)
  process.exit(1)
})

server.listen(port, '127.0.0.1', () => {
  console.log(`kinesalite listening on 127.0.0.1:${port}`)
})

function shutdown (sig) {
  console.log(`kinesalite: got ${sig}, shutting down`)
  server.close(() => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))
