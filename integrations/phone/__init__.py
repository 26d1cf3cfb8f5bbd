"""The outbound robot-call system: call a number and speak a text, ask how the call went
(docs/integrations/phone.md)."""
