-- wrk script: every connection gets its own session. Each wrk thread first sends one GET /login
-- per connection it owns (connections / threads), keeps each session cookie, then sends the
-- measured path with those cookies in rotation.
--   wrk -t2 -c64 -d5s --latency -s session.lua http://127.0.0.1:PORT -- /read 32
-- wrk gives Lua no handle on which connection sends a request, so "its own" means: as many
-- sessions as connections, each logged in once and used in turn (the 64 logins are a negligible
-- share of a run's requests and are counted in it).

local path = "/read"
local want = 32
local cookies = {}
local pending = 0
local next_cookie = 0

function init(args)
  path = args[1] or path
  want = tonumber(args[2]) or want
end

function request()
  if path == "/login" then
    -- Measuring logins: no cookie, so every request creates a new session.
    return wrk.format("GET", "/login")
  end
  if #cookies == 0 or #cookies + pending < want then
    pending = pending + 1
    return wrk.format("GET", "/login")
  end
  next_cookie = next_cookie % #cookies + 1
  return wrk.format("GET", path, { Cookie = cookies[next_cookie] })
end

function response(status, headers, body)
  if path == "/login" then
    return
  end
  -- Only /login answers "ok"; other paths answer a number (actix re-sends its cookie on
  -- every change, so a Set-Cookie alone does not mark a login).
  if body == "ok" and pending > 0 then
    pending = pending - 1
    local set = headers["Set-Cookie"] or headers["set-cookie"]
    if status == 200 and set and #cookies < want then
      cookies[#cookies + 1] = set:match("^[^;]+")
    end
  end
end
