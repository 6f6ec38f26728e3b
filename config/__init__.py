from config.settings import MpSettings, Settings, SettingsError, WeComSettings

__all__ = ["MpSettings", "Settings", "SettingsError", "WeComSettings"]
