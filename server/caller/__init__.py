"""A simulated Twilio caller: plays Twilio's side of a Media Stream over a real websocket.

``script`` parses caller scripts, ``call`` is the sans-IO far end (caller audio out, the
playback buffer in, marks, clear), ``client`` is its trio-websocket shell, ``analysis``
measures the call from the caller's side and ``report`` writes JSON / WAV / PNG.
"""
