"""What the business keeps: leads, calls, transcripts, the WhatsApp / webhook outbox, metrics."""
