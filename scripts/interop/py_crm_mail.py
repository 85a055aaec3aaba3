#!/usr/bin/env python3
"""Upstreams for the `/mcp` interop check (scripts/interop/aggregate.py), built on the official Python SDK.

    py_crm_mail.py --role crm  --transport http PORT      (Streamable HTTP at http://127.0.0.1:PORT/mcp)
    py_crm_mail.py --role mail --transport stdio --received FILE

Roles:
  crm   lookup_customer(id) -> structured {id, name, email, phone} of a generated customer (see `customer`)
  mail  send_email(to, subject, body) appends one JSON line {"to", "subject", "body"} to --received FILE
        (or $MAIL_RECEIVED_FILE) and answers "queued for <to>"
Each role also has 50 filler tools about unrelated things (deterministic names, descriptions and
parameters), so that search is tested among 100+ tools.

Test data is generated (Faker names on example.org/.com/.net, libphonenumber example numbers): never a
real person's.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mcp.server.mcpserver import MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from python_client import generate_people  # noqa: E402

FILLERS_PER_ROLE = 50

# Subjects far from mail and customers; the verbs include a few that also suit mail ("send", "list")
# so the ranking has to use the whole query.
SUBJECTS = {
    "crm": [
        ("weather_forecast", "the weather forecast for a city", "city"),
        ("warehouse_stock", "stock levels of a warehouse bin", "bin_code"),
        ("parking_spot", "a parking spot in the office garage", "level"),
        ("invoice", "an invoice of the accounting ledger", "invoice_number"),
        ("shipment", "a freight shipment and its pallets", "tracking_code"),
        ("recipe", "a recipe from the canteen cookbook", "dish"),
        ("server_rack", "a rack in the data centre inventory", "rack_label"),
        ("plant_watering", "the watering schedule of office plants", "room"),
        ("bike_rental", "a bike of the rental fleet", "bike_number"),
        ("meeting_room", "a meeting room booking", "room_code"),
    ],
    "mail": [
        ("train_timetable", "departures from a train station", "station"),
        ("currency_rate", "an exchange rate between two currencies", "pair"),
        ("solar_panel", "output of a rooftop solar panel", "panel_id"),
        ("library_book", "a book in the company library", "isbn"),
        ("coffee_machine", "the status of a coffee machine", "floor"),
        ("fleet_vehicle", "a vehicle of the delivery fleet", "plate"),
        ("build_pipeline", "a continuous integration pipeline run", "pipeline"),
        ("tide_table", "high and low tides at a harbour", "harbour"),
        ("fax_document", "a document queued on the fax gateway", "document_id"),
        ("printer_queue", "jobs waiting on a network printer", "printer"),
    ],
}
VERBS = [
    ("get", "Get"),
    ("list", "List every"),
    ("update", "Update"),
    ("archive", "Archive"),
    ("send", "Send a summary of"),
]


def fillers(role: str) -> list[tuple[str, str, str]]:
    """(tool name, description, parameter name) for the role's filler tools, in a fixed order."""
    out = []
    for subject, phrase, param in SUBJECTS[role]:
        for verb, verb_text in VERBS:
            out.append((f"{verb}_{subject}", f"{verb_text} {phrase}.", param))
    assert len(out) == FILLERS_PER_ROLE
    return out


def customer(cid: int) -> dict[str, Any]:
    """The generated customer behind `lookup_customer(cid)`: the same for every caller of the same id."""
    email, phone = generate_people(1000 + cid, 1)[0]
    name = email.split("@")[0].replace(".", " ").title()
    return {"id": cid, "name": name, "email": email, "phone": phone}


class Customer(BaseModel):
    id: int
    name: str
    email: str
    phone: str


def build(role: str, received: str | None) -> MCPServer:
    server = MCPServer(f"interop-{role}")
    if role == "crm":

        @server.tool()
        def lookup_customer(id: int) -> Customer:  # noqa: A002 (the tool's parameter name)
            """Look up a customer record by id: name, email address and phone number."""
            return Customer(**customer(id))

    else:
        if not received:
            raise SystemExit("the mail role needs --received FILE or MAIL_RECEIVED_FILE")

        @server.tool()
        def send_email(to: str, subject: str = "", body: str = "") -> str:
            """Send an email message to a recipient address."""
            with open(received, "a", encoding="utf-8") as f:
                f.write(json.dumps({"to": to, "subject": subject, "body": body}) + "\n")
            return f"queued for {to}"

    for name, description, param in fillers(role):
        server.add_tool(filler(name, param), name=name, description=description)
    return server


def filler(name: str, param: str) -> Any:
    """A filler tool's function, with the signature `(<param>: str) -> str` its input schema comes from."""

    def fn(**kwargs: Any) -> str:
        return f"{name}: done for {kwargs.get(param)!r}"

    fn.__name__ = name
    fn.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY, annotation=str)], return_annotation=str
    )
    fn.__annotations__ = {param: str, "return": str}
    return fn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["crm", "mail"], required=True)
    parser.add_argument("--transport", nargs="+", required=True, metavar="http PORT | stdio")
    parser.add_argument("--received", default=os.environ.get("MAIL_RECEIVED_FILE"))
    args = parser.parse_args()
    server = build(args.role, args.received)
    match args.transport:
        case ["stdio"]:
            server.run(transport="stdio")
        case ["http", port]:
            server.run(transport="streamable-http", host="127.0.0.1", port=int(port))
        case _:
            parser.error("--transport is 'http PORT' or 'stdio'")


if __name__ == "__main__":
    main()
