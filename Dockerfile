# taskwire: one process (HTTP API, WebSocket, job workers). Untested here: no Docker on the
# machine this was written on (see the README, "Deploy").
#   docker build -t taskwire .
#   docker run -p 4000:4000 -e DATABASE_URL=postgres://... -e TASKWIRE_SECRET=... taskwire
# Without DATABASE_URL it runs the embedded PostgreSQL in /data (mount a volume to keep it).
FROM node:24-slim

WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
# Node comes from the image, so the dev-only `node` package is not needed; no build step either
# (Node 24 runs the TypeScript in src/ directly). --ignore-scripts skips the project's own
# `prepare` (it builds dist/ for the published package, with dev tools); `npm rebuild` then runs
# the dependencies' install scripts (the embedded PostgreSQL's library links).
# (npm install, not npm ci: the lock file written here lacks other platforms' optional packages,
# which this machine's registry mirror does not serve, and npm ci refuses such a lock.)
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund && npm rebuild && npm cache clean --force
COPY bin ./bin
COPY src ./src
# Your own task types: COPY them in and name them, e.g.
#   COPY tasks ./tasks
#   ENV TASKWIRE_TASKS=./tasks/my-tasks.js

RUN mkdir -p /data && chown node:node /data
USER node
ENV HOST=0.0.0.0 PORT=4000 TASKWIRE_DATA_DIR=/data
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM: running attempts get TASKWIRE_SHUTDOWN_TIMEOUT_MS (25 s) to finish, then go back to the queue.
STOPSIGNAL SIGTERM
CMD ["node", "bin/taskwire.js", "start"]
