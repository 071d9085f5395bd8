"""Docker-free local stack for the SAM application: moto + in-process Lambda handlers.

`scrm local run` reads template.yaml, creates the resources in moto, serves the HttpApi routes
(behind their Lambda authorizers, as API Gateway runs them), polls the event sources and fires
schedules; `scrm invoke` / `scrm schedule` run one handler against that running stack.
"""
