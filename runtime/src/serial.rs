//! Opening serial devices: the `serialport` crate first; plain POSIX termios when it cannot
//! (qemu-user lacks the `termios2` ioctls serialport uses, which matters when testing ARM
//! binaries on a pseudo-terminal).

use std::io::{Read, Write};

/// An open serial device in raw 8N1 mode whose reads time out after about 200 ms with
/// `ErrorKind::TimedOut`.
pub enum SerialPort {
    /// Opened by the serialport crate.
    Native(serialport::TTYPort),
    /// Opened with termios directly.
    Termios(std::fs::File),
}

const READ_TIMEOUT_DECISECONDS: u8 = 2;

impl SerialPort {
    /// Opens `path` at `baud` baud.
    pub fn open(path: &str, baud: u32) -> std::io::Result<SerialPort> {
        match serialport::new(path, baud)
            .timeout(std::time::Duration::from_millis(200))
            .open_native()
        {
            Ok(port) => Ok(SerialPort::Native(port)),
            Err(native) => open_termios(path, baud)
                .map(SerialPort::Termios)
                .map_err(|_| std::io::Error::other(native.to_string())),
        }
    }

    /// A second handle on the same device (one for reading, one for writing).
    pub fn try_clone(&self) -> std::io::Result<SerialPort> {
        match self {
            SerialPort::Native(p) => p
                .try_clone_native()
                .map(SerialPort::Native)
                .map_err(|e| std::io::Error::other(e.to_string())),
            SerialPort::Termios(f) => f.try_clone().map(SerialPort::Termios),
        }
    }
}

/// Sets input and output speed as glibc's `cfsetospeed` and `cfsetispeed` do on Linux: the
/// baud bits of `c_cflag`, input following output. (The libc crate binds those two to
/// versioned glibc symbols on 32-bit ARM, `cfsetispeed@GLIBC_2.4`, which a static link, the
/// armv7 release binary's, cannot resolve.)
fn set_speed(t: &mut libc::termios, speed: libc::speed_t) {
    t.c_cflag = (t.c_cflag & !libc::CBAUD) | (speed & libc::CBAUD);
}

fn speed(baud: u32) -> Option<libc::speed_t> {
    Some(match baud {
        9_600 => libc::B9600,
        19_200 => libc::B19200,
        38_400 => libc::B38400,
        57_600 => libc::B57600,
        115_200 => libc::B115200,
        230_400 => libc::B230400,
        460_800 => libc::B460800,
        921_600 => libc::B921600,
        _ => return None,
    })
}

fn open_termios(path: &str, baud: u32) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let speed = speed(baud)
        .ok_or_else(|| std::io::Error::other(format!("unsupported baud rate {baud}")))?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: `fd` is open for the lifetime of `file`; termios is a plain C struct that
    // tcgetattr fills before we change it.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut t);
        t.c_cflag |= libc::CLOCAL | libc::CREAD;
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = READ_TIMEOUT_DECISECONDS;
        set_speed(&mut t, speed);
        if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(file)
}

impl Read for SerialPort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SerialPort::Native(p) => p.read(buf),
            // VMIN 0 / VTIME: a read with no data returns 0 after the timeout.
            SerialPort::Termios(f) => match f.read(buf)? {
                0 if !buf.is_empty() => Err(std::io::ErrorKind::TimedOut.into()),
                n => Ok(n),
            },
        }
    }
}

impl Write for SerialPort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            SerialPort::Native(p) => p.write(buf),
            SerialPort::Termios(f) => f.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            SerialPort::Native(p) => p.flush(),
            SerialPort::Termios(f) => f.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    // (the static armv7 build cannot link glibc's versioned cfsetospeed to compare with)
    #[cfg(not(all(target_arch = "arm", target_env = "gnu")))]
    #[test]
    fn speeds_are_set_in_the_line_flags_as_cfsetospeed_sets_them() {
        for baud in [9_600, 57_600, 115_200, 921_600] {
            let speed = speed(baud).unwrap();
            // SAFETY: termios is a plain C struct; cfset*speed only write its fields.
            let (mut ours, mut libc_t): (libc::termios, libc::termios) =
                unsafe { (std::mem::zeroed(), std::mem::zeroed()) };
            ours.c_cflag = libc::CS8 | libc::CREAD | libc::B9600;
            libc_t.c_cflag = ours.c_cflag;
            set_speed(&mut ours, speed);
            unsafe {
                libc::cfsetispeed(&mut libc_t, speed);
                libc::cfsetospeed(&mut libc_t, speed);
            }
            assert_eq!(ours.c_cflag, libc_t.c_cflag, "{baud} baud");
        }
    }

    #[test]
    fn termios_fallback_reads_writes_and_times_out_on_a_pty() {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty fills two descriptors that the Files below then own.
        let (mut master, _slave, name) = unsafe {
            assert_eq!(
                libc::openpty(
                    &mut master,
                    &mut slave,
                    std::ptr::null_mut(),
                    std::ptr::null(),
                    std::ptr::null()
                ),
                0
            );
            let name = std::ffi::CStr::from_ptr(libc::ttyname(slave))
                .to_string_lossy()
                .into_owned();
            (
                std::fs::File::from_raw_fd(master),
                std::fs::File::from_raw_fd(slave),
                name,
            )
        };
        let mut port = SerialPort::Termios(open_termios(&name, 115_200).unwrap());
        master.write_all(&[0, 1, 2, 0xff]).unwrap();
        let mut buf = [0u8; 8];
        let n = port.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0, 1, 2, 0xff],
            "raw mode: bytes pass unchanged"
        );
        let err = port.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        port.write_all(b"ok").unwrap();
        let mut back = [0u8; 2];
        master.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"ok");
    }
}
