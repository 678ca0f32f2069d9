"""The checker: SPEC §2 guarantees 1–4 and 6 over what producers confirmed and consumers printed.

The same rules as Tests/IntegrationTests/KillTests.swift (KillTestReport), generalised to
several senders per consumer, foreign senders to ignore, and expected (damaged) losses.
"""
import json
import re
import subprocess
from collections import Counter

from .common import complete_lines


def parse_consumer(path):
    """One consumer run's output: complete JSON lines (a consumer killed mid-write may leave a
    partial last line; that message was not acknowledged, so it comes again)."""
    messages = []
    for line in complete_lines(path):
        messages.append(json.loads(line))
    return messages


class Rejection:
    """The consumer's application rejects a deterministic subset: `courier-consumer
    --reject-matching PATTERN` (anchored, so the consumer's regex stays cheap). The consumer
    rejects with the reason `payload matches --reject-matching PATTERN` (ConsumerSession), on
    every delivery, since the pattern is deterministic; it prints those messages with
    "rejected": true."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.regex = re.compile(pattern)
        self.reason = f"payload matches --reject-matching {pattern}"

    def args(self):
        return ["--reject-matching", self.pattern]

    def matches(self, payload):
        return self.regex.search(payload) is not None


def dead_letters(ctx, data_dir, peer):
    """`courier-spool dead-letters DIR --peer PEER --json`: the sender's dead letters (a list of
    objects with seq, stream, reason_kind, reason, payload or payload_base64). Takes no lock.
    Returns (list, None) or (None, problem)."""
    result = subprocess.run([ctx.program("courier-spool"), "dead-letters", data_dir, "--peer", peer, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    if result.returncode != 0:
        return None, (f"courier-spool dead-letters {data_dir} --peer {peer} --json exited {result.returncode}: "
                      + result.stderr.decode("utf-8", "replace")[-300:])
    try:
        return json.loads(result.stdout.decode("utf-8"))["dead_letters"], None
    except (ValueError, KeyError) as error:
        return None, f"courier-spool dead-letters --json gave unreadable output ({error})"


def outbound_status(ctx, data_dir, peer):
    """`peer`'s entry in `courier-spool status DIR --json` (stream, acknowledged_up_to,
    pending, …), or None."""
    result = subprocess.run([ctx.program("courier-spool"), "status", data_dir, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
    try:
        document = json.loads(result.stdout.decode("utf-8"))
    except ValueError:
        return None
    for entry in document.get("peers", []):
        if entry.get("peer") == peer:
            return entry
    return None


SUMMARY = re.compile(r"delivered to (\S+): (\d+) processed, (\d+) rejected, (\d+) expired, "
                     r"(\d+) dead-lettered; (\d+) pending")


def drain_summary(stderr_text):
    """The counts of `courier-producer --wait`'s summary line on standard error, or None."""
    found = SUMMARY.findall(stderr_text)
    if not found:
        return None
    peer, processed, rejected, expired, dead, left = found[-1]
    return {"peer": peer, "processed": int(processed), "rejected": int(rejected), "expired": int(expired),
            "dead_lettered": int(dead), "pending": int(left)}


def letter_payload(letter):
    payload = letter.get("payload")
    return payload if payload is not None else "base64:" + str(letter.get("payload_base64"))


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
    but must still increase.
    rejection: a Rejection when the consumer rejected a deterministic subset; then
    dead_letters (the producer's, after the drain) are checked against it, and drain (a dict:
    summary = drain_summary(...), exit = the drain's exit code, status_before = the peer's
    outbound_status(...) before it, letters_before = its dead letters before it) is
    checked against the dead letters. Rejected messages are neither delivered nor lost: their
    outcome is the dead letter (_check_outcomes)."""

    def __init__(self, confirmed, runs, senders=None, valid_payload=None, expected_lost=(), allow_gaps=False, graceful=None,
                 rejection=None, dead_letters=None, drain=None):
        self.violations = []
        self.rejection = rejection
        self.wrong_outcomes = []      # texts: a wrong or missing outcome (rejection checks)
        self.rejected = 0
        self.reported_rejected = 0
        self.missing_outcomes = 0     # rejected messages absent from the dead letters (one text for all)
        self.summary_wrong = 0        # rejected messages a drain exiting 0 vouched for (one text for all)
        acked = set()                 # payloads printed without "rejected": acknowledged
        printed_rejected = set()      # payloads printed with "rejected": true
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
                if message.get("rejected"):
                    printed_rejected.add(payload)
                else:
                    acked.add(payload)
                if rejection is not None and bool(message.get("rejected")) != rejection.matches(payload):
                    self.wrong_outcomes.append(f"{at}: printed {'rejected' if message.get('rejected') else 'acknowledged'}"
                                               f" though the pattern says {'reject' if rejection.matches(payload) else 'accept'}")
                if not message.get("redelivered"):
                    unflagged[payload] = unflagged.get(payload, 0) + 1
            if graceful and index < len(graceful) and graceful[index]:
                acknowledged.update(((m.get("from"), m.get("stream")), m.get("seq"))
                                    for m in run if senders is None or m.get("from") in senders)
        self.unflagged_duplicates = sum(count - 1 for count in unflagged.values() if count > 1)
        confirmed_set = set(confirmed)
        self.confirmed = len(confirmed_set)
        # Delivered = handed out and acknowledged (the consumer printed it without "rejected").
        self.delivered = sum(1 for payload in confirmed_set if payload in acked)
        to_reject = {payload for payload in confirmed_set if rejection.matches(payload)} if rejection else set()
        reported = set()              # rejected payloads dead-lettered once, as rejected, with the reason
        if rejection is not None:
            reported = self._check_outcomes(rejection, to_reject | printed_rejected, acked, seq_of_payload,
                                            dead_letters, drain, valid_payload)
        self.rejected = len(to_reject)
        self.reported_rejected = len(to_reject & reported)
        self.lost_payloads = [payload for payload in confirmed if payload not in acked and payload not in to_reject]
        expected = set(expected_lost)
        self.expected_lost = len(expected & confirmed_set)
        self.unexpected_lost = [payload for payload in self.lost_payloads if payload not in expected]
        self.wrongly_expected = [payload for payload in expected & confirmed_set if payload in delivered]
        # P_persist: held (delivered, or rejected and in the dead letters with its reason;
        # nothing is pending after the drain) / confirmed.
        self.p_persist = (self.delivered + self.reported_rejected) / self.confirmed if self.confirmed else 1.0
        # P_reliable: delivered (or rejected and reported) in order with exactly one copy the
        # application could take as new (unflagged); flagged copies are allowed, as guarantee 4 says.
        reliable = sum(1 for payload in confirmed_set
                       if (payload in acked or payload in reported) and unflagged.get(payload, 0) <= 1 and payload not in bad)
        self.p_reliable = reliable / self.confirmed if self.confirmed else 1.0

    def _check_outcomes(self, rejection, expected, acked, seq_of_payload, letters, drain, valid_payload):
        """Outcomes (SPEC §2 guarantee 5, issue 21): every message the application rejected is in
        the sender's dead letters exactly once, as rejected, with the consumer's reason and its
        sequence number; nothing acknowledged is there; the drain's summary agrees. Returns the
        payloads reported rightly."""
        wrong = self.wrong_outcomes
        if letters is None:
            wrong.append("the producer's dead letters could not be read")
            return set()
        copies = Counter(letter_payload(letter) for letter in letters)
        right = Counter()
        for letter in letters:
            payload = letter_payload(letter)
            at = f"dead letter {letter.get('id')} (seq {letter.get('seq')}, {payload[:40]})"
            if letter.get("reason_kind") != "rejected" or letter.get("reason") != rejection.reason:
                wrong.append(f"{at}: {letter.get('reason_kind')} {letter.get('reason')!r}, expected rejected {rejection.reason!r}")
                continue
            if payload in acked:
                wrong.append(f"{at}: the consumer acknowledged this message, yet the sender dead-lettered it as rejected")
                continue
            if not rejection.matches(payload) or (valid_payload is not None and not valid_payload(payload)):
                wrong.append(f"{at}: a payload the consumer never rejects")
                continue
            seen = seq_of_payload.get(payload)
            if seen is None:
                wrong.append(f"{at}: rejected, but the consumer never printed it (the application never saw it)")
                continue
            if (seen[0][1], seen[1]) != (letter.get("stream"), letter.get("seq")):
                wrong.append(f"{at}: the consumer had it as stream {seen[0][1]} seq {seen[1]}")
                continue
            right[payload] += 1
        reported = set()
        missing = []
        for payload in sorted(expected):
            if copies[payload] == 0:
                missing.append(payload)
            elif copies[payload] > 1:
                wrong.append(f"{payload}: {copies[payload]} dead letters (expected exactly one)")
            elif right[payload] == 1:
                reported.add(payload)
        if missing:
            shown = ", ".join(f"{p} (consumer: stream {seq_of_payload[p][0][1]} seq {seq_of_payload[p][1]})"
                              if p in seq_of_payload else f"{p} (never printed)" for p in missing[:5])
            wrong.append(f"{len(missing)} rejected messages missing from the dead letters (reported processed?), first: {shown}")
            self.missing_outcomes = len(missing)
        if drain is not None:
            self._check_drain(drain, letters, acked)
        return reported

    def _check_drain(self, drain, letters, acked):
        """The drain's summary and exit code against the dead letters. Two readings of
        `courier-producer --wait`'s summary are accepted: this run's outcomes only (what the
        node learned while the drain ran), or every outcome not yet reported by an earlier
        --wait run (issue 21: the outcomes API; the kill scenario has no earlier --wait run,
        so that is every message ever sent). Whichever the summary is, it must agree exactly."""
        wrong = self.wrong_outcomes
        summary = drain.get("summary")
        if summary is None:
            wrong.append("the drain printed no summary of outcomes")
            return
        if summary["expired"] or summary["dead_lettered"] or summary["pending"]:
            wrong.append(f"the drain's summary: {summary}")
            return
        # Reading 2: every outcome since the data directory was new.
        total = []
        if summary["rejected"] != len(letters):
            total.append(f"{summary['rejected']} rejected, but there are {len(letters)} dead letters")
        if summary["processed"] != len(acked):
            total.append(f"{summary['processed']} processed, but the consumer acknowledged {len(acked)} messages")
        if drain.get("exit") != (1 if summary["rejected"] else 0):
            total.append(f"exit {drain.get('exit')} with {summary['rejected']} rejected")
        if not total:
            drain["reading"] = "every run's outcomes"
            return
        # Reading 1: the outcomes the drain itself learned. A pending message whose rejection
        # an earlier run had already stored as a dead letter (the dead letter was durable,
        # the acknowledged mark not yet past it) is finished without being counted again.
        this_run = []
        status = drain.get("status_before")
        letters_before = drain.get("letters_before") or []
        new = len(letters) - len(letters_before)
        if summary["rejected"] != new:
            this_run.append(f"{summary['rejected']} rejected, but {new} dead letters were added during the drain")
        if status is None:
            this_run.append("courier-spool status before the drain gave no entry for the peer")
        else:
            earlier_letters = [letter for letter in letters_before
                               if letter.get("stream") == status.get("stream")
                               and letter.get("seq", 0) > status.get("acknowledged_up_to", 0)]
            earlier = len(earlier_letters)
            drain["rejected_earlier"] = earlier
            if summary["processed"] + summary["rejected"] + earlier != status.get("pending"):
                this_run.append(f"{summary['processed']} processed + {summary['rejected']} rejected "
                                f"(+ {earlier} rejected by earlier runs), but {status.get('pending')} "
                                f"messages were pending when it started")
            # SPEC §5: exit 0 only when every message it waited for was processed. A drain
            # that exits 0 although messages pending when it started were rejected reports
            # those messages wrongly (one wrong outcome each).
            if drain.get("exit") == 0 and summary["rejected"] + earlier:
                shown = ", ".join(f"seq {letter.get('seq')} {letter_payload(letter)}" for letter in earlier_letters[:5])
                this_run.append(f"exit 0 saying {summary['rejected']} rejected, but {summary['rejected'] + earlier} "
                                f"message(s) pending when it started were rejected ({earlier} by an earlier run, dead "
                                f"letters stored before the drain: {shown}); SPEC §5: exit 0 only when every message "
                                f"it waited for was processed")
                self.summary_wrong = summary["rejected"] + earlier
            elif drain.get("exit") != (1 if summary["rejected"] + earlier else 0):
                this_run.append(f"exit {drain.get('exit')} with {summary['rejected']} rejected in its summary and "
                                f"{earlier} pending messages rejected by earlier runs")
        if not this_run:
            drain["reading"] = "this run's outcomes"
            return
        wrong.append(f"the drain (courier-producer --wait) summary '{summary}' agrees with neither reading: "
                     f"as this run's outcomes: {'; '.join(this_run)}; as every run's outcomes: {'; '.join(total)}")

    @property
    def wrong_outcome_count(self):
        """Wrong or missing outcomes: one per problem text, but one per message for the missing
        dead letters and for the rejected messages a drain exiting 0 passed over."""
        return (len(self.wrong_outcomes) + (self.missing_outcomes - 1 if self.missing_outcomes else 0)
                + (self.summary_wrong - 1 if self.summary_wrong else 0))

    @property
    def lost(self):
        return len(self.lost_payloads)

    def ok(self, tolerate_acked_again=False):
        return (not self.violations and not self.unexpected_lost and not self.wrongly_expected
                and not self.wrong_outcomes
                and (tolerate_acked_again or not self.acked_again))

    def problems(self):
        out = [f"wrong outcome: {text}" for text in self.wrong_outcomes[:5]]
        if len(self.wrong_outcomes) > 5:
            out.append(f"… {len(self.wrong_outcomes) - 5} more wrong outcomes")
        out += list(self.violations[:5])
        if self.acked_again:
            out.append(f"{self.acked_again} messages acknowledged before a graceful stop were handed out again "
                       f"(guarantee 3), first: {self.acked_again_examples}")
        if self.unexpected_lost:
            out.append(f"{len(self.unexpected_lost)} confirmed payloads never delivered, first {self.unexpected_lost[:5]}")
        if self.wrongly_expected:
            out.append(f"{len(self.wrongly_expected)} payloads of damaged records were delivered, first {self.wrongly_expected[:5]}")
        return out

    def fields(self):
        fields = {"confirmed": self.confirmed, "delivered": self.delivered, "lost": self.lost,
                  "duplicated": self.unflagged_duplicates, "redelivered": self.redelivered,
                  "P_persist": self.p_persist, "P_reliable": self.p_reliable}
        if self.rejection is not None:
            fields.update(rejected=self.rejected, reported_rejected=self.reported_rejected,
                          wrong_outcomes=self.wrong_outcome_count)
        return fields


def merge(reports):
    """One line's figures out of several checked consumers (the mesh)."""
    total = {"confirmed": 0, "delivered": 0, "lost": 0, "duplicated": 0, "redelivered": 0}
    optional = ("rejected", "reported_rejected", "wrong_outcomes")
    reliable = 0.0
    for report in reports:
        fields = report.fields()
        for key in total:
            total[key] += fields[key]
        for key in optional:
            if key in fields:
                total[key] = total.get(key, 0) + fields[key]
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
