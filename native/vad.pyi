# Types of native/vad.pyx.
from native.config import TimingConfig

NOISE_TRACK_MS: int
NOISE_RESEAT_MS: int
ECHO_LEARN_DB: float  # an echo within this of the threshold: the frame teaches the noise floor nothing
ERL_FLOOR_DB: float  # the EchoGuard's learned echo return never goes below this
ERL_DECAY_DB_PER_S: float  # how fast the learned echo return falls (per second of frames quieter than it)
CALLER_HOLD_MS: int  # no raise of the learned echo return this soon after the caller's voice
ECHO_NOISE_DB: float  # line noise a frame over the voice threshold can carry on top of its echo
DELAY_MIN_FRAMES: int  # trusted frame pairs under the agent before the EchoGuard believes a delay
DELAY_MIN_CORR: float  # the best delay's correlation (of frame-to-frame changes) must reach this
DELAY_SIDE_RATIO: float  # delays more than a frame off it correlate at most this x as well
DELAY_WIDTH_MS: int  # the learned delay is used +- this
EOU_NONE: int
EOU_ONSET: int
EOU_END: int
EOU_FORCED: int

class FrameClassifier:
    threshold: float
    noise_floor: float
    calibrated: bool
    voice: bool
    reseats: int
    run_start_ms: int  # stream time the reported state (voice / silence) really began
    pending: bool  # the last frame disagreed with the reported state (a flip may be coming)
    cfg: TimingConfig
    def __init__(self, cfg: TimingConfig | None = None) -> None: ...
    def reset(self) -> None: ...
    def update(self, rms: float, t_ms: int, echo: float = 0.0) -> bool: ...

NEVER_FRAMES: int

class EouDetector:
    onset_ms: int
    in_utterance: bool
    silence_ms: int
    utterance_ms: int
    drop_ms: int
    voiced_ms: int  # voice in the current utterance (the last ended one's until the next onset)
    hold: bool  # writable: the caller's words stop mid-phrase (no sharp-drop END, longer silence)
    cfg: TimingConfig
    def __init__(self, cfg: TimingConfig | None = None) -> None: ...
    def reset(self) -> None: ...
    def open(self, onset_ms: int, t_ms: int, voiced_ms: int = 0, min_utt_ms: int = -1) -> None: ...
    def update(self, voice: bool, rms: float, t_ms: int, classifier: FrameClassifier | None = None) -> int: ...
    def frames_to_forced(self) -> int: ...
    def frames_to_end_in_silence(self) -> int: ...
    def frames_to_end(self) -> int: ...

class BargeInDetector:
    armed: bool
    fired: bool
    armed_at: int
    onset_ms: int
    cfg: TimingConfig
    def __init__(self, cfg: TimingConfig | None = None) -> None: ...
    def arm(self, t_ms: int) -> None: ...
    def disarm(self) -> None: ...
    def update(self, voice: bool, t_ms: int, classifier: FrameClassifier | None = None) -> bool: ...
    def frames_to_fire(self) -> int: ...

class EchoGuard:
    cfg: TimingConfig
    gain: float  # 10 ** (echo_return_db / 20): the worst case, where each call's learning starts
    erl: float  # the learned echo return (RMS ratio): 10 ** (ERL_FLOOR_DB / 20) <= erl <= gain
    @property
    def erl_db(self) -> float: ...
    @property
    def delay_ms(self) -> int: ...  # the learned echo delay the gate centres on, -1: every delay allowed
    def __init__(self, cfg: TimingConfig | None = None) -> None: ...
    def reset(self) -> None: ...
    def played(self, rms: float, t_ms: int) -> None: ...
    def cut(self, t_ms: int) -> None: ...
    def far(self, t_ms: int) -> float: ...
    def level(self, t_ms: int) -> float: ...
    def learn(self, rms: float, t_ms: int, voice: bool, threshold: float = 0.0) -> None: ...
