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

const port = Number(process.env.PORT || 3000)
app.listen(port, "127.0.0.1", () => console.error(`express listening on 127.0.0.1:${port}`))
