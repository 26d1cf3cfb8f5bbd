"""The SMS gateway: send a text to a mobile number, ask for its delivery report (docs/integrations/sms.md)."""
