"""The web front door (``imweb``): the patients' and staff's chat app over HTTP, and the small API the hospital's
mini-program back end calls for view tokens (IM-17). The console (staff, administrators, auditors, statistics)
grows here too. It speaks to the chat server only through its database (``imserver.admin``) and, in the browser,
through the protocol (SPEC.md)."""
