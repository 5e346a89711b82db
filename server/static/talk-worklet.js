// The microphone at the AudioContext's rate -> 16-bit PCM at 8 kHz in 20 ms frames (160
// samples), posted to talk.js. Each output sample is the mean of the input samples it covers
// (a box filter: enough anti-aliasing for speech going to a phone-band recognizer).
"use strict";
class AlCapture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.ratio = sampleRate / 8000;
    this.acc = 0;
    this.sum = 0;
    this.n = 0;
    this.frame = new Int16Array(160);
    this.k = 0;
  }

  process(inputs) {
    const input = inputs[0] && inputs[0][0];
    if (!input) return true;
    for (let i = 0; i < input.length; i++) {
      this.sum += input[i];
      this.n++;
      this.acc += 1;
      if (this.acc >= this.ratio) {
        this.acc -= this.ratio;
        const v = Math.round((this.sum / this.n) * 32767);
        this.sum = 0;
        this.n = 0;
        this.frame[this.k++] = v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
        if (this.k === 160) {
          this.port.postMessage(this.frame.slice(0));
          this.k = 0;
        }
      }
    }
    return true;
  }
}
registerProcessor("al-capture", AlCapture);
