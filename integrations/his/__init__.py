"""The hospital information system (HIS): its feed of treatment events (docs/integrations/his.md)."""
