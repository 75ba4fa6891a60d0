// The benchmark app on express + express-session + connect-redis, configured as connect-redis's
// README shows (resave: false, saveUninitialized: false, the `redis` client).
//   PORT=3000 REDIS_URL=redis://127.0.0.1:6379/0 node server.js
import express from "express"
import session from "express-session"
import {RedisStore} from "connect-redis"
import {createClient} from "redis"

const redisClient = createClient({url: process.env.REDIS_URL})
await redisClient.connect()

const app = express()
app.use(
  session({
    store: new RedisStore({client: redisClient}),
    resave: false,
    saveUninitialized: false,
    secret: "keyboard cat",
  }),
)

app.get("/login", (req, res) => {
  req.session.user_id = 4242
  req.session.name = "Ada Lovelace"
  req.session.roles = ["admin", "editor", "viewer"]
  req.session.counter = 0
  res.send("ok")
})

app.get("/inc", (req, res) => {
  if (req.session.counter === undefined) return res.status(401).send("no session")
  req.session.counter += 1
  res.send(String(req.session.counter))
})

app.get("/read", (req, res) => {
  if (req.session.counter === undefined) return res.status(401).send("no session")
  res.send(String(req.session.counter))
})

// The lost-fields bench (bench/lost.sh): POST /set/NAME/VALUE sets the session field NAME
// (f0..f63, else 400; 401 without a session) to the number VALUE; GET /fields returns them.
const FIELD = /^f([0-9]|[1-5][0-9]|6[0-3])$/

app.post("/set/:name/:value", (req, res) => {
  const {name, value} = req.params
  if (!FIELD.test(name) || !/^[0-9]+$/.test(value)) return res.status(400).send("field names are f0..f63")
  if (req.session.counter === undefined) return res.status(401).send("no session")
  req.session[name] = Number(value)
  res.send(value)
})

app.get("/fields", (req, res) => {
  const out = {}
  for (let i = 0; i < 64; i++) if (req.session[`f${i}`] !== undefined) out[`f${i}`] = req.session[`f${i}`]
  res.json(out)
})

const port = Number(process.env.PORT || 3000)
app.listen(port, "127.0.0.1", () => console.error(`express listening on 127.0.0.1:${port}`))
