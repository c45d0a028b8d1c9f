//! Every string the client shows, in English and Simplified Chinese, in one table. Views
//! never hold literals: they name a [`T`] and ask for it in the chosen [`Lang`]. Strings with
//! `{}` are filled in order by [`fill`].

/// The interface language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The language of a locale name such as `zh-CN` or `en_US.UTF-8` (Chinese for `zh*`).
    pub fn from_locale(locale: &str) -> Self {
        if locale.to_ascii_lowercase().starts_with("zh") {
            Self::Zh
        } else {
            Self::En
        }
    }

    /// The language's short name, as `--lang` and the settings file spell it.
    pub fn code(self) -> &'static str {
        match self {
            Self::En => "en",
            Self::Zh => "zh",
        }
    }

    /// Parses `en` or `zh`.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "en" => Some(Self::En),
            "zh" => Some(Self::Zh),
            _ => None,
        }
    }
}

macro_rules! strings {
    ($($key:ident => $en:literal, $zh:literal;)*) => {
        /// A string of the interface.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum T { $($key,)* }

        impl T {
            /// Every string, for tests that check the table.
            pub const ALL: &[T] = &[$(T::$key,)*];

            /// The string in `lang`.
            pub fn get(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((T::$key, Lang::En) => $en, (T::$key, Lang::Zh) => $zh,)*
                }
            }
        }
    };
}

strings! {
    AppName => "Uchat", "Uchat";
    Server => "Server", "服务器";
    Username => "Username", "用户名";
    Password => "Password", "密码";
    LogIn => "Log in", "登录";
    Register => "Register", "注册";
    Language => "Language", "语言";
    Working => "Working…", "请稍候…";
    BadCredentials => "Wrong username or password", "用户名或密码错误";
    FirstContact => "First connection to {}", "首次连接到 {}";
    FirstContactBody => "Compare this fingerprint with the one the server printed when it started (ask its operator). Accept only if they are the same.", "请将此指纹与服务器启动时显示的指纹核对（可询问服务器管理员）。两者一致时才接受。";
    Fingerprint => "Fingerprint", "指纹";
    AcceptKey => "Accept and continue", "接受并继续";
    Cancel => "Cancel", "取消";
    KeyChangedTitle => "Warning: the server's key has changed", "警告：服务器密钥已改变";
    KeyChangedBody => "The server at {} presented a different key from the one you accepted before. Someone may be impersonating it. Do not continue unless its operator confirms the key was replaced; then remove its line from {}.", "{} 上的服务器出示的密钥与您之前接受的不同，可能有人在冒充它。除非管理员确认密钥已更换，否则不要继续；确认后请从 {} 中删除它的那一行。";
    PinnedKey => "Accepted before", "之前接受的";
    PresentedKey => "Presented now", "现在出示的";
    Back => "Back", "返回";
    CreateAccount => "Create account", "创建账号";
    RepeatPassword => "Repeat password", "确认密码";
    Email => "Email", "邮箱";
    Sex => "Sex", "性别";
    Age => "Age", "年龄";
    SexUndisclosed => "Not said", "不透露";
    SexMale => "Male", "男";
    SexFemale => "Female", "女";
    SexOther => "Other", "其他";
    ErrRequired => "Required", "必填";
    ErrUsername => "1 to 8 letters or digits, no spaces", "1 到 8 个字母或数字，不含空格";
    ErrPasswordLong => "At most 128 bytes", "最多 128 字节";
    ErrPasswordShort => "At least 8 characters", "至少 8 个字符";
    ErrPasswordsDiffer => "The passwords differ", "两次输入的密码不一致";
    ErrEmail => "An address like name@host.tld", "格式应为 name@host.tld";
    ErrAge => "A number from 0 to 150", "0 到 150 之间的数字";
    UsernameTaken => "This username is taken", "该用户名已被使用";
    EmailTaken => "This email is taken", "该邮箱已被使用";
    BackToLogin => "Back to log in", "返回登录";
    SearchUsers => "Find users by name", "按用户名查找";
    Search => "Search", "搜索";
    NoUsersFound => "Nobody by that name", "没有找到该用户";
    AddFriend => "Add {}", "添加 {}";
    FriendRequests => "Friend requests", "好友请求";
    WantsToBeFriends => "{} wants to be your friend", "{} 请求添加您为好友";
    Accept => "Accept", "接受";
    Reject => "Reject", "拒绝";
    Later => "Later", "稍后";
    GroupName => "Group name", "群名称";
    CreateGroup => "Create group", "创建群";
    GroupNumber => "Group number", "群号";
    JoinGroup => "Join group", "加入群";
    Contacts => "Contacts", "联系人";
    NoContacts => "No contacts yet: find users by name above.", "还没有联系人：请在上方按用户名查找。";
    GroupTag => "group {}", "群 {}";
    NoMessages => "No messages yet", "暂无消息";
    ImagePreview => "[image]", "[图片]";
    FilePreview => "[file] {}", "[文件] {}";
    ChooseChat => "Choose a contact to chat.", "选择一个联系人开始聊天。";
    DeleteFriend => "Delete friend", "删除好友";
    ConfirmDelete => "Delete {} from your friends? This ends the friendship on both sides.", "确定删除好友 {} 吗？双方的好友关系都会解除。";
    YesDelete => "Yes, delete", "确定删除";
    SafetyNumber => "Safety number", "安全码";
    SafetyNumberIs => "Safety number with {}: {}. Compare it with theirs in person.", "与 {} 的安全码：{}。请当面核对。";
    PeerKeyChanged => "{}'s key has changed: compare safety numbers again before you trust new messages.", "{} 的密钥已改变：请重新核对安全码后再信任新消息。";
    Send => "Send", "发送";
    SendImage => "Send image", "发送图片";
    SendFile => "Send file", "发送文件";
    FontSize => "Size", "字号";
    Colour => "Colour", "颜色";
    MessageInput => "Message (Enter sends, Shift+Enter breaks the line)", "消息（回车发送，Shift+回车换行）";
    Sending => "sending…", "发送中…";
    Queued => "waiting for the connection", "等待连接";
    Failed => "not sent: {}", "发送失败：{}";
    Retry => "Retry", "重试";
    Save => "Save", "保存";
    Close => "Close", "关闭";
    NewMessages => "New messages ↓", "新消息 ↓";
    LoadingOlder => "Loading older messages…", "正在加载更早的消息…";
    StartOfChat => "Start of the conversation", "会话开始";
    ImageLoading => "Loading image…", "正在加载图片…";
    ImageFailed => "Image not shown: {}", "无法显示图片：{}";
    OpenFullSize => "Open full size", "查看原图";
    FileSize => "{} ({})", "{}（{}）";
    ChooseFileTitle => "Send a file: choose it, or drop it onto the window", "发送文件：选择文件，或将文件拖入窗口";
    Folder => "Folder", "文件夹";
    Up => "Up", "上一级";
    Transfer => "{}: {} of {}", "{}：{} / {}";
    Connected => "Connected to {}", "已连接到 {}";
    Reconnecting => "Connection lost; reconnecting…", "连接已断开，正在重新连接…";
    NotConnected => "Not connected", "未连接";
    SignedInAs => "Signed in as {}", "当前用户：{}";
    LogOut => "Log out", "退出登录";
    KeyLostTitle => "Your key is not on this computer", "此电脑上没有您的密钥";
    KeyLostBody => "Your password is right, but the private key that opens your messages is neither on this computer nor restorable from the server's copy. If you still have the computer where you last used Uchat, log in there: it holds your key.", "密码正确，但用于打开消息的私钥既不在此电脑上，也无法从服务器保存的副本恢复。如果您还能使用上次登录 Uchat 的电脑，请在那台电脑上登录：密钥在那里。";
    StartOverNote => "Starting over makes a new key. Your friends will be told that your key changed, and messages from before stay unreadable on this computer.", "重新开始会生成新的密钥。好友会收到您的密钥已更改的提示，之前的消息在此电脑上将无法阅读。";
    StartOver => "Start over with a new key", "用新密钥重新开始";
    ForgottenPassword => "Uchat cannot recover a forgotten password: without it no one, not even the server, can open your key.", "Uchat 无法找回遗忘的密码：没有密码，任何人（包括服务器）都无法打开您的密钥。";
    ChangePassword => "Change password", "修改密码";
    SaveNewPassword => "Save the new password", "保存新密码";
    WrongCurrentPassword => "The current password is not right", "当前密码不正确";
    CurrentPassword => "Current password", "当前密码";
    NewPassword => "New password", "新密码";
    RepeatNewPassword => "Repeat new password", "确认新密码";
    PasswordChanged => "Password changed: use the new one from now on, on every computer", "密码已修改：今后在所有电脑上请使用新密码";
    KickedTitle => "Signed in elsewhere", "已在别处登录";
    KickedBody => "Your account was signed in on another computer, so this session was closed.", "您的账号已在另一台电脑上登录，本次会话已关闭。";
    LogInAgain => "Log in again", "重新登录";
    RequestSent => "Friend request sent", "好友请求已发送";
    RoomReady => "Group \"{}\" is ready: its number is {}", "群“{}”已就绪，群号为 {}";
    Saved => "Saved to {}", "已保存到 {}";
    Dismiss => "Dismiss", "关闭提示";
    NoCjkFont => "No Chinese font was found, so Chinese text shows as boxes. Install one (e.g. `apt install fonts-wqy-microhei`) and restart.", "未找到中文字体，中文将显示为方框。请安装字体（例如 `apt install fonts-wqy-microhei`）后重启。";
    TitleUnread => "Uchat ({} unread)", "Uchat（{} 条未读）";
}

/// Replaces each `{}` of `template` with the next of `args`.
pub fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut args = args.iter();
    let mut rest = template;
    while let Some(at) = rest.find("{}") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        out.push_str(args.next().copied().unwrap_or(""));
        rest = after.get(2..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_exists_in_both_languages_with_the_same_blanks() {
        for t in T::ALL {
            let (en, zh) = (t.get(Lang::En), t.get(Lang::Zh));
            assert!(!en.is_empty() && !zh.is_empty(), "{t:?}");
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{t:?}");
        }
    }

    #[test]
    fn fill_puts_arguments_in_order() {
        assert_eq!(fill("{} of {}", &["1", "2"]), "1 of 2");
        assert_eq!(fill("no blanks", &["x"]), "no blanks");
        assert_eq!(fill("{}{}", &["a"]), "a");
    }

    #[test]
    fn chinese_locales_choose_chinese() {
        assert_eq!(Lang::from_locale("zh-CN"), Lang::Zh);
        assert_eq!(Lang::from_locale("zh_TW.UTF-8"), Lang::Zh);
        assert_eq!(Lang::from_locale("en-US"), Lang::En);
        assert_eq!(Lang::from_locale("de"), Lang::En);
    }
}
