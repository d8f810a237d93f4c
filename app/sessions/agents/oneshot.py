"""The one-shot adapter: each turn runs the agent's CLI once with the prompt as an argument.

For agents whose non-interactive mode cannot ask anything (aider, custom agents, and any
agent whose config `command` holds {prompt}). Interrupting is SIGINT to the process group, then
SIGTERM and SIGKILL.
"""

from __future__ import annotations

from collections.abc import Callable

from .adapter import TurnEnd, TurnRequest, TurnSink
from .approvals import Decision
from .parsers import Event, JsonLinesParser, TextParser, make_parser
from .process import AgentProcess
from .registry import AgentSpec
from .transcript import Transcript


class ProcessTurn:
    """What every adapter that runs one process per turn shares: the process, its events
    written through a Transcript, and the turn's end reported to the sink."""

    def __init__(self, spec: AgentSpec, program: str) -> None:
        self.spec = spec
        self.program = program
        self.process: AgentProcess | None = None
        self.transcript: Transcript | None = None
        self.sink: TurnSink | None = None
        # Set when the turn was asked to stop through the agent's own protocol ("interrupt").
        self.asked_to_stop: str | None = None

    @property
    def final_text(self) -> str:
        return self.transcript.final_text if self.transcript else ""

    def spawn(self, turn: TurnRequest, sink: TurnSink, argv: list[str], talks: bool = False,
              parser: TextParser | JsonLinesParser | None = None) -> AgentProcess:
        """`parser`: the protocol's own (default: the one of the spec's output format)."""
        self.sink = sink
        self.transcript = Transcript(sink, self.program, turn.cwd)
        self.process = AgentProcess(argv, turn.cwd, turn.env,
                                    parser or make_parser(self.spec.format), self,
                                    turn.interrupt_grace, talks=talks)
        self.process.start()
        return self.process

    def on_event(self, event: Event) -> None:
        if self.process is not None and self.process.closing:
            return  # abandoned: its tab or session is gone
        assert self.transcript is not None
        self.transcript.on_event(event)

    def on_exit(self, exit_code: int) -> None:
        assert self.transcript is not None and self.sink is not None
        transcript = self.transcript
        stopped_by = self.process.sent_signal if self.process else None
        failure = transcript.exit_error(exit_code) or self.unfinished()
        self.sink.ended(TurnEnd(exit_code, stopped_by or self.asked_to_stop, failure,
                                transcript.agent_failed or failure is not None,
                                transcript.final_text))

    def unfinished(self) -> str | None:
        """Why the turn failed although the agent exited 0 (a protocol whose turn must end
        with a verdict, and did not); None: nothing is missing."""
        return None

    def stop_turn(self, ask_to_stop: Callable[[], bool]) -> str | None:
        """Stop the turn through the agent's own protocol (`ask_to_stop` sends its interrupt;
        False: it could not), then SIGINT, SIGTERM, SIGKILL when the turn does not end within
        the grace period. Returns what stopped it; None when nothing ran."""
        process = self.process
        if process is None or process.wait(0):
            return None
        assert self.transcript is not None
        self.transcript.interrupted = True
        self.asked_to_stop = "interrupt"
        if ask_to_stop() and process.wait(process.grace):
            return "interrupt"
        return self.signal_ladder()

    def signal_ladder(self) -> str | None:
        """SIGINT, SIGTERM, SIGKILL to the process group, each after a grace period."""
        if self.process is None:
            return None
        if self.transcript is not None:
            self.transcript.interrupted = True
        return self.process.interrupt()

    def close(self) -> None:
        if self.process is not None:
            self.process.close()


class OneShotAdapter(ProcessTurn):
    """`<program> <args> <prompt>` per turn, per the agent's command template."""

    def start(self, turn: TurnRequest, sink: TurnSink) -> None:
        extra = (self.spec.model_flag, turn.model) if turn.model and self.spec.model_flag \
            else ()
        argv = self.spec.argv(turn.prompt, turn.agent_session_id, extra)
        self.spawn(turn, sink, [self.program, *argv[1:]])

    def answer(self, key: str, decision: Decision) -> None:
        """A one-shot run never asks."""

    def interrupt(self) -> str | None:
        return self.signal_ladder()
