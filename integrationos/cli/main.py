"""The `integrationos` command."""

from __future__ import annotations

import argparse
import sys

from integrationos.cli import dlq
from integrationos.settings import Settings


def _kafka(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.cli.devbroker import BrokerError, DevBroker

    broker = DevBroker.from_settings(settings)
    try:
        print({"start": broker.start, "stop": broker.stop, "status": broker.status}[args.action]())
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.engine.worker import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def _api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from integrationos import logs, tracing
    from integrationos.api.app import create_app

    tracing.configure("integrationos-api", f"{settings.api_host}:{settings.api_port}")
    try:
        uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port,
                    log_level=args.loglevel, access_log=False,
                    log_config=logs.dict_config(args.loglevel) or LOGGING_CONFIG)
    finally:
        tracing.shutdown()
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.cli.platform import run_platform

    return run_platform(settings, workers=args.workers, keep_broker=args.keep_broker)


def _tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.cli.tenants import create_tenant

    tenant = create_tenant(settings, args.name, args.plan)
    print(f"tenant:  {tenant.tenant_id}")
    print(f"api key: {tenant.api_key}   (shown once; stored only as a hash)")
    if not tenant.applied:
        print("warning: no worker has applied it yet; it works once `integrationos worker` "
              "(or `integrationos up`) runs", file=sys.stderr)
    return 0


def _tenants_plan(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.cli.tenants import change_plan

    overrides = {"messagesPerMonth": args.messages_per_month,
                 "requestsPerMinute": args.requests_per_minute,
                 "connectors": args.connectors, "retentionDays": args.retention_days}
    try:
        applied = change_plan(settings, args.tenant, args.plan, overrides)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"tenant {args.tenant}: plan {args.plan}"
          + "".join(f", {k} {v}" for k, v in overrides.items() if v is not None))
    if not applied:
        print("warning: no worker has applied it yet", file=sys.stderr)
    return 0


def _api_keys(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.api.serializers import iso
    from integrationos.cli import api_keys as keys

    try:
        if args.api_keys_command == "issue":
            new = keys.issue_key(settings, args.tenant, args.name, args.role,
                                 args.env or ["DEV", "QA", "PROD"], not args.test)
            print(f"key id:  {new.key_id}")
            print(f"api key: {new.api_key}   (shown once; stored only as a hash)")
            applied = new.applied
        elif args.api_keys_command == "revoke":
            applied = keys.revoke_key(settings, args.tenant, args.key_id)
            print(f"revoked: {args.key_id}")
        else:
            for row in keys.list_keys(settings, args.tenant):
                used = "never" if row.last_used_at is None else iso(row.last_used_at)
                print(f"{row.key_id}  {row.prefix}...  {row.name!r}  roles={row.roles}  "
                      f"envs={row.environments}  created={iso(row.created_at)}  "
                      f"last-used={used}{'  REVOKED' if row.revoked else ''}")
            return 0
    except keys.KeyCommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not applied:
        print("warning: no worker has applied it yet; it takes effect once one runs",
              file=sys.stderr)
    return 0


def _rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.store.database import open_database
    from integrationos.store.rebuild import rebuild
    from integrationos.topics.catalog import PROJECTED_TOPICS

    engine = open_database(args.database_url or settings.database_url)
    count = rebuild(engine, settings.kafka_bootstrap,
                    [spec.name(settings.topic_prefix) for spec in PROJECTED_TOPICS])
    print(f"rebuilt projections from {count} events")
    return 0


def _keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.cli.keys import RotationIncomplete, rotate

    try:
        rotation = rotate(settings, retire=args.retire)
    except RotationIncomplete as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"sealing key: {rotation.key_id}; re-sealed {rotation.resealed} connector(s)")
    if rotation.retired:
        print("retired: " + ", ".join(rotation.retired))
    return 0


def _topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from integrationos.topics.admin import ensure_topics

    created = ensure_topics(settings.kafka_bootstrap, settings.topic_prefix)
    print("created: " + (", ".join(created) or "nothing (all exist)"))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="integrationos", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    kafka = sub.add_parser("kafka", help="the development Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(run=_kafka)

    up = sub.add_parser("up", help="broker, worker(s) and API in one command")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--keep-broker", action="store_true", help="leave the broker running")
    up.set_defaults(run=_up)

    worker = sub.add_parser("worker", help="one engine worker (Faust)")
    worker.add_argument("--loglevel", default="warning")
    worker.set_defaults(run=_worker)

    api = sub.add_parser("api", help="the HTTP API (uvicorn)")
    api.add_argument("--loglevel", default="warning")
    api.set_defaults(run=_api)

    tenants = sub.add_parser("tenants", help="tenant administration")
    tenants_sub = tenants.add_subparsers(dest="tenants_command", required=True)
    create = tenants_sub.add_parser("create", help="create a tenant and print its first key")
    create.add_argument("name")
    create.add_argument("--plan", choices=["free", "pro", "enterprise"], default="free")
    create.set_defaults(run=_tenants_create)
    plan = tenants_sub.add_parser("plan", help="change a tenant's plan and overrides "
                                  "(an override not given goes back to the plan's value)")
    plan.add_argument("tenant")
    plan.add_argument("--plan", choices=["free", "pro", "enterprise"], required=True)
    plan.add_argument("--messages-per-month", type=int, help="-1: unlimited")
    plan.add_argument("--requests-per-minute", type=int)
    plan.add_argument("--connectors", type=int, help="-1: unlimited")
    plan.add_argument("--retention-days", type=int, help="1 to 90")
    plan.set_defaults(run=_tenants_plan)

    api_keys = sub.add_parser("api-keys", help="a tenant's API keys (issue, list, revoke)")
    api_keys_sub = api_keys.add_subparsers(dest="api_keys_command", required=True)
    issue = api_keys_sub.add_parser("issue", help="issue a key and print it once")
    issue.add_argument("--name", required=True)
    issue.add_argument("--role", action="append", required=True,
                       choices=["admin", "developer", "operator", "viewer"],
                       help="repeat for several roles")
    issue.add_argument("--env", action="append", choices=["DEV", "QA", "PROD"],
                       help="where the key may act; repeat; default every environment")
    issue.add_argument("--test", action="store_true", help="an ip_test_ key")
    listing = api_keys_sub.add_parser("list", help="the tenant's keys (never the keys)")
    revoke = api_keys_sub.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("key_id")
    for command in (issue, listing, revoke):
        command.add_argument("--tenant", required=True)
        command.set_defaults(run=_api_keys)

    projections = sub.add_parser("projections", help="read models")
    projections_sub = projections.add_subparsers(dest="projections_command", required=True)
    rebuild = projections_sub.add_parser("rebuild", help="rebuild the tables from the log")
    rebuild.add_argument("--database-url", help="rebuild into this database instead")
    rebuild.set_defaults(run=_rebuild)

    keys = sub.add_parser("keys", help="master keys of the credential vault")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser("rotate", help="new master key; re-seal every credential")
    rotate.add_argument("--retire", action="store_true",
                        help="then drop the old keys from the key file")
    rotate.set_defaults(run=_keys_rotate)

    dlq.add_parser(sub)

    topics = sub.add_parser("topics", help="create the declared topics")
    topics.add_argument("action", choices=["create"])
    topics.set_defaults(run=_topics_create)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.run(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
