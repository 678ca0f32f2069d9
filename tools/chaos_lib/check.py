"""The checker: SPEC §2 guarantees 1–4 and 6 over what producers confirmed and consumers printed.

The same rules as Tests/IntegrationTests/KillTests.swift (KillTestReport), generalised to
several senders per consumer, foreign senders to ignore, and expected (damaged) losses.
"""
import json

from .common import complete_lines


def parse_consumer(path):
    """One consumer run's output: complete JSON lines (a consumer killed mid-write may leave a
    partial last line; that message was not acknowledged, so it comes again)."""
    messages = []
    for line in complete_lines(path):
        messages.append(json.loads(line))
    return messages


class Report:
    """confirmed: payloads whose send returned (the producers' --print-spooled lines).
    runs: each consumer run's messages, in order.
    senders: the ids whose streams are checked (others, such as a hostile peer, are skipped).
    valid_payload: a predicate; a delivered payload failing it is corrupt (guarantee 6).
    expected_lost: payloads the scenario destroyed on purpose (damaged spool records).
    graceful: per run, whether the consumer ended with exit 0 after SIGTERM: it had then
    acknowledged every message it printed, so none of them may be handed out again
    (guarantee 3), flagged or not; such copies are counted in acked_again.
    allow_gaps: sequence numbers may jump (quarantined numbers are tombstones, never delivered),
    but must still increase."""

    def __init__(self, confirmed, runs, senders=None, valid_payload=None, expected_lost=(), allow_gaps=False, graceful=None):
        self.violations = []
        self.redelivered = 0          # copies flagged redelivered (later copies and flagged first copies)
        self.flagged_first = 0
        self.unflagged_duplicates = 0
        self.disorder = 0
        self.corrupt = 0
        delivered = {}                # payload -> number of copies
        unflagged = {}                # payload -> unflagged copies
        streams = {}                  # (from, stream) -> highest seq and payload by seq
        seq_of_payload = {}
        bad = set()                   # payloads involved in a violation
        acknowledged = set()          # (key, seq) printed by runs that ended gracefully
        self.acked_again = 0
        self.acked_again_examples = []

        def violate(payload, text):
            bad.add(payload)
            self.violations.append(text)
        for index, run in enumerate(runs):
            previous = {}
            for message in run:
                sender = message.get("from")
                if senders is not None and sender not in senders:
                    continue
                key = (sender, message.get("stream"))
                seq = message.get("seq")
                payload = message.get("payload")
                if payload is None:
                    payload = "base64:" + str(message.get("payload_base64"))
                at = f"consumer run {index + 1}, {sender}/{key[1]} seq {seq} ({payload[:40]})"
                state = streams.setdefault(key, {"highest": 0, "payloads": {}})
                if key in previous and (seq <= previous[key] if allow_gaps else seq != previous[key] + 1):
                    self.disorder += 1
                    violate(payload, f"{at}: follows seq {previous[key]} in the same run (order or gap)")
                previous[key] = seq
                if message.get("redelivered"):
                    self.redelivered += 1
                if (key, seq) in acknowledged:
                    self.acked_again += 1
                    bad.add(payload)
                    if len(self.acked_again_examples) < 3:
                        self.acked_again_examples.append(f"{at}: acknowledged by an earlier run that stopped gracefully, handed out again")
                if seq <= state["highest"]:
                    if not message.get("redelivered"):
                        violate(payload, f"{at}: handed out again without redelivered")
                    first = state["payloads"].get(seq)
                    if first is not None and first != payload:
                        violate(payload, f"{at}: earlier copy had payload {first[:40]}")
                else:
                    if seq != state["highest"] + 1 and not allow_gaps:
                        self.disorder += 1
                        violate(payload, f"{at}: gap after seq {state['highest']}")
                    state["highest"] = seq
                    state["payloads"][seq] = payload
                    if message.get("redelivered"):
                        self.flagged_first += 1
                if payload in seq_of_payload and seq_of_payload[payload] != (key, seq):
                    violate(payload, f"{at}: the same payload came before as seq {seq_of_payload[payload][1]} (sent twice?)")
                seq_of_payload[payload] = (key, seq)
                if valid_payload is not None and not valid_payload(payload):
                    self.corrupt += 1
                    violate(payload, f"{at}: a payload nobody sent (corrupt?)")
                delivered[payload] = delivered.get(payload, 0) + 1
                if not message.get("redelivered"):
                    unflagged[payload] = unflagged.get(payload, 0) + 1
            if graceful and index < len(graceful) and graceful[index]:
                acknowledged.update(((m.get("from"), m.get("stream")), m.get("seq"))
                                    for m in run if senders is None or m.get("from") in senders)
        self.unflagged_duplicates = sum(count - 1 for count in unflagged.values() if count > 1)
        confirmed_set = set(confirmed)
        self.confirmed = len(confirmed_set)
        self.delivered = sum(1 for payload in confirmed_set if payload in delivered)
        self.lost_payloads = [payload for payload in confirmed if payload not in delivered]
        expected = set(expected_lost)
        self.expected_lost = len(expected & confirmed_set)
        self.unexpected_lost = [payload for payload in self.lost_payloads if payload not in expected]
        self.wrongly_expected = [payload for payload in expected & confirmed_set if payload in delivered]
        # P_persist: held (delivered; nothing is pending after the drain) / confirmed.
        self.p_persist = self.delivered / self.confirmed if self.confirmed else 1.0
        # P_reliable: delivered in order with exactly one copy the application could take as
        # new (unflagged); flagged copies are allowed, as guarantee 4 says.
        reliable = sum(1 for payload in confirmed_set
                       if payload in delivered and unflagged.get(payload, 0) <= 1 and payload not in bad)
        self.p_reliable = reliable / self.confirmed if self.confirmed else 1.0

    @property
    def lost(self):
        return len(self.lost_payloads)

    def ok(self, tolerate_acked_again=False):
        return (not self.violations and not self.unexpected_lost and not self.wrongly_expected
                and (tolerate_acked_again or not self.acked_again))

    def problems(self):
        out = list(self.violations[:5])
        if self.acked_again:
            out.append(f"{self.acked_again} messages acknowledged before a graceful stop were handed out again "
                       f"(guarantee 3), first: {self.acked_again_examples}")
        if self.unexpected_lost:
            out.append(f"{len(self.unexpected_lost)} confirmed payloads never delivered, first {self.unexpected_lost[:5]}")
        if self.wrongly_expected:
            out.append(f"{len(self.wrongly_expected)} payloads of damaged records were delivered, first {self.wrongly_expected[:5]}")
        return out

    def fields(self):
        return {"confirmed": self.confirmed, "delivered": self.delivered, "lost": self.lost,
                "duplicated": self.unflagged_duplicates, "redelivered": self.redelivered,
                "P_persist": self.p_persist, "P_reliable": self.p_reliable}


def merge(reports):
    """One line's figures out of several checked consumers (the mesh)."""
    total = {"confirmed": 0, "delivered": 0, "lost": 0, "duplicated": 0, "redelivered": 0}
    reliable = 0.0
    for report in reports:
        for key in total:
            total[key] += report.fields()[key]
        reliable += report.p_reliable * report.confirmed
    total["P_persist"] = total["delivered"] / total["confirmed"] if total["confirmed"] else 1.0
    total["P_reliable"] = reliable / total["confirmed"] if total["confirmed"] else 1.0
    return total


class Combined:
    """Several checked reports (consumers, or cycles of a scenario) as one line's figures."""

    def __init__(self, reports):
        self.reports = reports

    @property
    def expected_lost(self):
        return sum(report.expected_lost for report in self.reports)

    @property
    def acked_again(self):
        return sum(report.acked_again for report in self.reports)

    def ok(self, tolerate_acked_again=False):
        return all(report.ok(tolerate_acked_again) for report in self.reports)

    def problems(self):
        return [problem for report in self.reports for problem in report.problems()]

    def fields(self):
        return merge(self.reports)
