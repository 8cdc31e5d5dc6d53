// SPDX-License-Identifier: GPL-2.0
/*
 * pv-vcio: /dev/vcio for mainline kernels.
 *
 * The Raspberry Pi firmware's one-shot tryboot flag (property tag
 * SET_REBOOT_FLAGS) is set through a firmware mailbox property call. The
 * Raspberry Pi downstream kernel offers that call to user space as
 * /dev/vcio; mainline kernels (Debian's) only offer it to other drivers,
 * through rpi_firmware_property_list(). This module is that missing
 * device: one ioctl, IOCTL_MBOX_PROPERTY, taking a property message
 *
 *	u32 size (bytes, whole message), u32 code (0 = request),
 *	tags..., u32 end tag (0)
 *
 * and answering in place (code 0x80000000 on success, 0x80000001 when the
 * firmware refused). Only root may open it, messages are bounded and
 * copied into a kernel buffer once; the size the kernel acts on is the one
 * it checked, never re-read from user memory.
 */
#include <linux/compat.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <soc/bcm2835/raspberrypi-firmware.h>

#define PV_VCIO_MAGIC 100
#define IOCTL_MBOX_PROPERTY _IOWR(PV_VCIO_MAGIC, 0, char *)
#ifdef CONFIG_COMPAT
#define IOCTL_MBOX_PROPERTY32 _IOWR(PV_VCIO_MAGIC, 0, compat_uptr_t)
#endif

/* size, code and end tag: the smallest (empty) message */
#define PV_VCIO_MIN_SIZE 12
/*
 * The firmware's buffers are DMA memory allocated per call; a page holds
 * every tag the tryboot switch and the usual queries need.
 */
#define PV_VCIO_MAX_SIZE 4096

static struct rpi_firmware *pv_vcio_fw;

static long pv_vcio_property(u32 __user *umsg)
{
	u32 size, *msg;
	int ret;

	if (get_user(size, umsg))
		return -EFAULT;
	if (size < PV_VCIO_MIN_SIZE || size > PV_VCIO_MAX_SIZE || size % 4)
		return -EINVAL;
	msg = memdup_user(umsg, size);
	if (IS_ERR(msg))
		return PTR_ERR(msg);
	/*
	 * rpi_firmware_property_list() writes the header and the end tag
	 * itself: it is given the tags only.
	 */
	ret = rpi_firmware_property_list(pv_vcio_fw, &msg[2], size - PV_VCIO_MIN_SIZE);
	msg[0] = size;
	msg[size / 4 - 1] = RPI_FIRMWARE_PROPERTY_END;
	if (ret == 0) {
		msg[1] = RPI_FIRMWARE_STATUS_SUCCESS;
	} else if (ret == -EINVAL) {
		/* the firmware answered with an error status */
		msg[1] = RPI_FIRMWARE_STATUS_ERROR;
		ret = 0;
	}
	if (ret == 0 && copy_to_user(umsg, msg, size))
		ret = -EFAULT;
	kfree(msg);
	return ret;
}

static long pv_vcio_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	if (cmd != IOCTL_MBOX_PROPERTY)
		return -ENOTTY;
	return pv_vcio_property((u32 __user *)arg);
}

#ifdef CONFIG_COMPAT
static long pv_vcio_compat_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	if (cmd != IOCTL_MBOX_PROPERTY32)
		return -ENOTTY;
	return pv_vcio_property(compat_ptr(arg));
}
#endif

static const struct file_operations pv_vcio_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = pv_vcio_ioctl,
#ifdef CONFIG_COMPAT
	.compat_ioctl = pv_vcio_compat_ioctl,
#endif
};

static struct miscdevice pv_vcio_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "vcio",
	.fops = &pv_vcio_fops,
	.mode = 0600,
};

static int __init pv_vcio_init(void)
{
	struct device_node *np;
	int ret;

	np = of_find_compatible_node(NULL, NULL, "raspberrypi,bcm2835-firmware");
	if (!np)
		return -ENODEV;
	pv_vcio_fw = rpi_firmware_get(np);
	of_node_put(np);
	if (!pv_vcio_fw)
		return -EPROBE_DEFER;
	ret = misc_register(&pv_vcio_dev);
	if (ret)
		rpi_firmware_put(pv_vcio_fw);
	return ret;
}

static void __exit pv_vcio_exit(void)
{
	misc_deregister(&pv_vcio_dev);
	rpi_firmware_put(pv_vcio_fw);
}

module_init(pv_vcio_init);
module_exit(pv_vcio_exit);

MODULE_DESCRIPTION("Raspberry Pi firmware property calls as /dev/vcio (mainline kernels)");
MODULE_AUTHOR("Pantavisor");
MODULE_LICENSE("GPL v2");
