"""WeChat service-account template messages (SVC-2): the hospital's official account sends a notice to
a follower's openid (docs/integrations/wechat.md)."""
